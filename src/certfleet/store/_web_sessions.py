"""Sessions of signed-in dashboard browsers (table of migration 0009_web)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from certfleet.access import ApiToken
from certfleet.store._repositories import SqlAuditRepository, SqlTokenRepository
from certfleet.store._unit_of_work import Store
from certfleet.store._web_models import WebSessionRow

__all__ = ["SqlWebSessionRepository", "SqlWebSessionStore", "WebSession", "WebSessionUnit"]


@dataclass(frozen=True)
class WebSession:
    id_sha256: str
    token: ApiToken
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime


@dataclass
class SqlWebSessionRepository:
    """Browser sessions, inside the caller's transaction."""

    session: Session
    _tokens: SqlTokenRepository = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = SqlTokenRepository(self.session)

    def add(self, id_sha256: str, token_id: str, now: dt.datetime, expires_at: dt.datetime) -> None:
        self.session.add(
            WebSessionRow(
                id_sha256=id_sha256,
                token_id=token_id,
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
            )
        )
        self.session.flush()

    def get(self, id_sha256: str) -> WebSession | None:
        row = self.session.get(WebSessionRow, id_sha256)
        if row is None:
            return None
        token = self._tokens.get(row.token_id)
        if token is None:
            return None
        return WebSession(row.id_sha256, token, row.created_at, row.last_seen_at, row.expires_at)

    def touch(self, id_sha256: str, now: dt.datetime) -> None:
        self.session.execute(
            update(WebSessionRow).where(WebSessionRow.id_sha256 == id_sha256).values(last_seen_at=now)
        )

    def delete(self, id_sha256: str) -> None:
        self.session.execute(delete(WebSessionRow).where(WebSessionRow.id_sha256 == id_sha256))

    def purge(self, idle_before: dt.datetime, now: dt.datetime) -> int:
        """Drop sessions past their absolute expiry or idle since ``idle_before``."""
        result = self.session.execute(
            delete(WebSessionRow).where(
                (WebSessionRow.expires_at < now) | (WebSessionRow.last_seen_at < idle_before)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class WebSessionUnit:
    """The browser sessions and the audit log over one transaction."""

    sessions: SqlWebSessionRepository
    audit: SqlAuditRepository


class SqlWebSessionStore:
    """Transactions over the sessions table, for the dashboard's sign-in and sign-out."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[WebSessionUnit]:
        with self._store.unit_of_work(read_only=read_only) as uow:
            yield WebSessionUnit(SqlWebSessionRepository(uow.session), uow.audit)

"""Sessions of signed-in dashboard browsers (migration 0009_web) and pending single sign-on
attempts (0030_oidc_sessions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from certfleet.access import ApiToken
from certfleet.store._repositories import SqlAuditRepository, SqlTokenRepository
from certfleet.store._unit_of_work import Store
from certfleet.store._web_models import OidcLoginRow, WebSessionRow

__all__ = ["PendingLogin", "SqlWebSessionRepository", "SqlWebSessionStore", "WebSession", "WebSessionUnit"]


@dataclass(frozen=True)
class WebSession:
    """A session opened with an API token (``token``), or through single sign-on (``token``
    None; ``principal_name``, ``team`` and ``scope`` are what the user's groups mapped to)."""

    id_sha256: str
    token: ApiToken | None
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    principal_name: str | None = None
    team: str | None = None
    scope: str | None = None


@dataclass(frozen=True)
class PendingLogin:
    browser_sha256: str
    nonce: str
    code_verifier: str
    next_path: str


@dataclass
class SqlWebSessionRepository:
    """Browser sessions, inside the caller's transaction."""

    session: Session
    _tokens: SqlTokenRepository = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = SqlTokenRepository(self.session)

    def add(
        self,
        id_sha256: str,
        token_id: str | None,
        now: dt.datetime,
        expires_at: dt.datetime,
        *,
        principal: tuple[str, str | None, str] | None = None,
    ) -> None:
        """``principal`` (name, team, scope) for a single sign-on session, which has no token."""
        name, team, scope = principal or (None, None, None)
        self.session.add(
            WebSessionRow(
                id_sha256=id_sha256,
                token_id=token_id,
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
                principal_name=name,
                team=team,
                scope=scope,
            )
        )
        self.session.flush()

    def get(self, id_sha256: str) -> WebSession | None:
        row = self.session.get(WebSessionRow, id_sha256)
        if row is None:
            return None
        if row.token_id is None:
            return WebSession(
                row.id_sha256,
                None,
                row.created_at,
                row.last_seen_at,
                row.expires_at,
                row.principal_name,
                row.team,
                row.scope,
            )
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
        logins = self.session.execute(delete(OidcLoginRow).where(OidcLoginRow.expires_at < now))
        return int(getattr(result, "rowcount", 0) or 0) + int(getattr(logins, "rowcount", 0) or 0)

    def add_login(
        self,
        state_sha256: str,
        browser_sha256: str,
        nonce: str,
        code_verifier: str,
        next_path: str,
        expires_at: dt.datetime,
    ) -> None:
        self.session.add(
            OidcLoginRow(
                state_sha256=state_sha256,
                browser_sha256=browser_sha256,
                nonce=nonce,
                code_verifier=code_verifier,
                next_path=next_path,
                expires_at=expires_at,
            )
        )
        self.session.flush()

    def take_login(self, state_sha256: str, now: dt.datetime) -> PendingLogin | None:
        """The pending sign-in for ``state``, deleted in the same transaction: of two callbacks
        racing with one state, only the one whose DELETE removed the row gets it."""
        row = self.session.execute(
            select(OidcLoginRow).where(OidcLoginRow.state_sha256 == state_sha256)
        ).scalar_one_or_none()
        if row is None:
            return None
        login = PendingLogin(row.browser_sha256, row.nonce, row.code_verifier, row.next_path)
        expired = row.expires_at <= now
        result = self.session.execute(delete(OidcLoginRow).where(OidcLoginRow.state_sha256 == state_sha256))
        if int(getattr(result, "rowcount", 0) or 0) != 1 or expired:
            return None
        return login


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

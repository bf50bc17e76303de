"""EST credentials (table ``est_credentials``, migration 0021_est): only the SHA-256 of each
password is stored."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from sqlalchemy import String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from certfleet.access import EstCredential, NamePattern
from certfleet.store._database import Database
from certfleet.store._sql import raw_utc, rowcount
from certfleet.store._token_reader import OneRowReader
from certfleet.store.models import Base, UtcDateTime

__all__ = ["EstCredentialRow", "SqlEstCredentialReader", "SqlEstCredentialRepository"]


class EstCredentialRow(Base):
    __tablename__ = "est_credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(100), index=True)
    profile: Mapped[str | None] = mapped_column(String(64))
    allow_names_json: Mapped[str] = mapped_column(Text)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


def _credential(row: EstCredentialRow) -> EstCredential:
    return EstCredential(
        id=row.id,
        team=row.team,
        profile=row.profile,
        allow_names=tuple(NamePattern(p) for p in json.loads(row.allow_names_json)),
        secret_sha256=row.secret_sha256,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class SqlEstCredentialRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, credential: EstCredential) -> None:
        self._session.add(
            EstCredentialRow(
                id=credential.id,
                team=credential.team,
                profile=credential.profile,
                allow_names_json=json.dumps([p.text for p in credential.allow_names]),
                secret_sha256=credential.secret_sha256,
                created_at=credential.created_at,
            )
        )
        self._session.flush()

    def get(self, credential_id: str) -> EstCredential | None:
        row = self._session.get(EstCredentialRow, credential_id)
        return _credential(row) if row else None

    def list(self) -> Sequence[EstCredential]:
        rows = self._session.scalars(
            select(EstCredentialRow).order_by(EstCredentialRow.created_at, EstCredentialRow.id)
        )
        return [_credential(r) for r in rows]

    def revoke(self, credential_id: str, at: dt.datetime) -> bool:
        result = self._session.execute(
            update(EstCredentialRow)
            .where(EstCredentialRow.id == credential_id, EstCredentialRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return rowcount(result) == 1


class SqlEstCredentialReader:
    """The credential behind every Basic-authenticated EST request, read afresh each time (a
    revocation refuses the very next request on any worker or node) with one SELECT, as API
    tokens are read (:class:`~certfleet.store._token_reader.OneRowReader`). On a SQLite file
    each request thread reads through a connection of its own: through the pool, wrk -c64
    made the request threads open and close overflow connections (pool_size 5) and queue
    for checkouts, which REST's token reader never did."""

    def __init__(self, database: Database) -> None:
        self._rows = OneRowReader(
            database,
            "SELECT team, profile, allow_names_json, secret_sha256, created_at, revoked_at"
            " FROM est_credentials WHERE id = {id}",
        )

    def get(self, credential_id: str) -> EstCredential | None:
        row = self._rows.row(credential_id)
        if row is None:
            return None
        team, profile, allow_names, secret_sha256, created_at, revoked_at = row
        return EstCredential(
            id=credential_id,
            team=team,
            profile=profile,
            allow_names=tuple(NamePattern(p) for p in json.loads(allow_names)),
            secret_sha256=secret_sha256,
            created_at=raw_utc(created_at),
            revoked_at=raw_utc(revoked_at) if revoked_at is not None else None,
        )

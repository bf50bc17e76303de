"""SQL shapes every repository shares: LIKE escaping, row claiming, dialect-aware INSERT."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

__all__ = [
    "LIKE_ESCAPE",
    "dialect_insert",
    "dump_json",
    "escape_like",
    "for_update",
    "load_json",
    "raw_utc",
    "rowcount",
    "skip_locked",
]

_S = TypeVar("_S", bound="Select[*tuple[Any, ...]]")


def raw_utc(value: Any) -> dt.datetime:
    """A timestamp read without SQLAlchemy's types (a DBAPI cursor on a hot path): SQLite
    gives ISO text, PostgreSQL an aware datetime; both are UTC (see ``UtcDateTime``)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# The escape character passed with every LIKE built from escape_like.
LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (``escape=LIKE_ESCAPE``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def skip_locked(session: Session, stmt: _S) -> _S:
    """Claim rows: on PostgreSQL each worker locks the rows it takes and skips those another
    holds (``FOR UPDATE SKIP LOCKED``), so several ``serve`` processes share the work without
    waiting on each other. SQLite's BEGIN IMMEDIATE already serialises writers."""
    return stmt.with_for_update(skip_locked=True) if _postgresql(session) else stmt


def for_update(session: Session, stmt: _S) -> _S:
    """Lock the selected rows until commit on PostgreSQL (SQLite serialises writers)."""
    return stmt.with_for_update() if _postgresql(session) else stmt


def dialect_insert(session: Session, table: Any) -> Any:
    """The INSERT of the session's dialect, for ``on_conflict_do_*`` (both dialects have it).
    Each dialect's module is imported where it is used: a SQLite CLI loads no PostgreSQL."""
    if _postgresql(session):
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def rowcount(result: object) -> int:
    """Rows an UPDATE or DELETE touched (0 where the driver does not say)."""
    return int(getattr(result, "rowcount", 0) or 0)


def dump_json(value: Any) -> str | None:
    """A JSON column's text, keys sorted so equal values store equal text; None stays NULL."""
    return None if value is None else json.dumps(value, sort_keys=True)


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)

"""Looking at the database directly, to prove what a call did or did not record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from certfleet.store import Database

RECORD_TABLES = ("certificates", "certificate_names", "serials", "certificate_authorities", "api_tokens")


def table_counts(database: Database, tables: tuple[str, ...] = RECORD_TABLES) -> dict[str, int]:
    with database.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def rows(database: Database, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with database.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def audit_actions(database: Database) -> list[str]:
    return [r[0] for r in rows(database, "SELECT action FROM audit_log ORDER BY seq")]

"""Looking at the database directly, to prove what a call did or did not record."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
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


@contextmanager
def private_database(kind: str, directory: Path, pg_url: str | None = None) -> Iterator[str]:
    """A database of one's own for fixtures wider than one test: a SQLite file in
    ``directory``, or a fresh schema in the session's PostgreSQL database (the per-test
    truncation of ``db_url`` touches only the public schema, and dropping a schema forces
    no checkpoint, unlike dropping a database)."""
    if kind == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{directory / 'certfleet.db'}"
        return
    assert pg_url is not None
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

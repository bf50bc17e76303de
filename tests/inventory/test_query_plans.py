"""Listing stays index-driven at a million certificates, on SQLite and on PostgreSQL.

No timing: the test loads a million rows, refreshes the planner statistics, and asks each
database for the plan of the exact SELECT the repository runs (``EXPLAIN QUERY PLAN`` on
SQLite, ``EXPLAIN`` on PostgreSQL). A filter that made the database read the whole table
would show up as a scan.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text

from certfleet.inventory import MAX_PAGE_SIZE, CertificateQuery, Status
from certfleet.store import Database
from certfleet.store._repositories import SqlCertificateRepository
from tests.inventory.synthetic import TABLES, load_postgresql, load_sqlite

ROWS = 1_000_000
NOW = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


class _PostgresLoad:
    """Loads the PostgreSQL copy, into a schema of its own in the session's test database,
    in a thread: the work happens in the server process, so it overlaps with the SQLite load
    running in this one. (A schema, not a database: dropping a database forces a checkpoint
    that writes out everything just loaded.)"""

    def __init__(self, pg_url: str) -> None:
        self.admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
        self.schema = f"million_{secrets.token_hex(4)}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        self.database = Database(f"{pg_url}?options=-csearch_path%3D{self.schema}")
        # Migrate here, not in the thread: Alembic keeps its migration context in module
        # globals, so two migrations must never run at once.
        self.database.upgrade()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="million-postgresql", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            load_postgresql(self.database, ROWS, NOW)
        except BaseException as exc:  # re-raised in the test thread by result()
            self._error = exc

    def result(self) -> Database:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.database

    def drop(self) -> None:
        self._thread.join()
        self.database.dispose()
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


@pytest.fixture(scope="module")
def million_databases(pg_database_url: str) -> Iterator[dict[str, Database]]:
    """Both databases with a million certificates each (their own, not the shared test ones).

    The SQLite file goes to a memory file system where there is one: the planner is the
    same, and 900 MB need not be written to disk and deleted again.
    """
    postgresql = _PostgresLoad(pg_database_url)  # starts loading in the background
    shm = Path("/dev/shm")
    try:
        with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as scratch:
            path = Path(scratch) / "certfleet.db"
            migrated = Database(f"sqlite:///{path}")
            migrated.upgrade()
            migrated.dispose()
            load_sqlite(path, ROWS, NOW)
            sqlite = Database(f"sqlite:///{path}")
            try:
                yield {"sqlite": sqlite, "postgresql": postgresql.result()}
            finally:
                sqlite.dispose()
    finally:
        postgresql.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def million(request: pytest.FixtureRequest, million_databases: dict[str, Database]) -> Database:
    return million_databases[request.param]


def explain(database: Database, query: CertificateQuery) -> list[str]:
    """The plan of the very statement (SQL and bound parameters) the repository executes."""
    prefix = "EXPLAIN QUERY PLAN " if database.dialect == "sqlite" else "EXPLAIN "
    plan: list[str] = []

    def add_prefix(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> Any:
        return prefix + statement, parameters

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        plan.extend(str(row[-1]) for row in cursor.fetchall())

    with database.session() as session:
        statement = SqlCertificateRepository(session).select_statement(query, NOW)
        event.listen(database.engine, "before_cursor_execute", add_prefix, retval=True)
        event.listen(database.engine, "after_cursor_execute", capture)
        try:
            session.connection().execute(statement)
        finally:
            event.remove(database.engine, "before_cursor_execute", add_prefix)
            event.remove(database.engine, "after_cursor_execute", capture)
    assert plan, "EXPLAIN returned no plan"
    return plan


def full_scans(database: Database, plan: list[str]) -> list[str]:
    """Plan lines that read a whole inventory table."""
    if database.dialect == "sqlite":
        # "SCAN certificates" reads every row; "SCAN ... USING [COVERING] INDEX" walks an index.
        return [line for line in plan if line.startswith("SCAN ") and "USING" not in line]
    return [line for line in plan if "Seq Scan" in line]


def _page(**filters: Any) -> CertificateQuery:
    return CertificateQuery(limit=MAX_PAGE_SIZE, **filters)


_INDEX_IN_PLAN = re.compile(
    r"(?:USING (?:COVERING )?INDEX|Index (?:Only )?Scan using|Bitmap Index Scan on) (\w+)"
)


def leading_columns(database: Database) -> dict[str, str]:
    """The first column of every index on the inventory tables, by index name."""
    with database.engine.connect() as conn:
        if database.dialect == "sqlite":
            names = conn.execute(
                text(f"SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN {TABLES}")
            ).scalars()
            return {
                name: str(conn.exec_driver_sql(f'PRAGMA index_info("{name}")').fetchall()[0][2])
                for name in names
            }
        rows = conn.execute(
            text(
                "SELECT i.relname, a.attname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_class t ON t.oid = x.indrelid "
                "LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] "
                f"WHERE t.relname IN {TABLES} AND t.relnamespace = current_schema()::regnamespace"
            )
        )
        return {name: str(column) for name, column in rows}


def indexes_used(plan: list[str]) -> list[str]:
    return [m.group(1) for line in plan for m in _INDEX_IN_PLAN.finditer(line)]


# Selective filters: an index led by the filtered column must drive the plan on both
# databases (whichever of several such indexes the planner prefers).
SELECTIVE = {
    "team": (_page(team="team-7"), {"team"}),
    "team next page": (_page(team="team-7", after_id=500_000), {"team"}),
    "san": (_page(san="h4242.example.com"), {"name"}),
    "status revoked": (_page(status=Status.REVOKED), {"status"}),
    "status superseded next page": (_page(status=Status.SUPERSEDED, after_id=900_000), {"status"}),
    "expiring within a day": (_page(expiring_within=dt.timedelta(days=1)), {"status", "not_after"}),
}

# Broad filters match tens of thousands of rows or more. Either the filter's index drives
# the plan, or the planner walks the id index (the keyset order) and stops after one page,
# which is cheaper when a page's worth of matches comes early; never a full table read.
BROAD = {
    "expiring within 30 days": _page(expiring_within=dt.timedelta(days=30)),
    "expiring within 7 days": _page(expiring_within=dt.timedelta(days=7)),
    "status active": _page(status=Status.ACTIVE),
    "status expired": _page(status=Status.EXPIRED),
}


@pytest.mark.parametrize("case", list(SELECTIVE))
def test_selective_filters_use_their_index(million: Database, case: str) -> None:
    query, columns = SELECTIVE[case]
    plan = explain(million, query)
    assert full_scans(million, plan) == [], "\n".join(plan)
    leading = leading_columns(million)
    assert {leading.get(name) for name in indexes_used(plan)} & columns, "\n".join(plan)


@pytest.mark.parametrize("case", list(BROAD))
def test_broad_filters_never_read_the_whole_table(million: Database, case: str) -> None:
    plan = explain(million, BROAD[case])
    assert full_scans(million, plan) == [], "\n".join(plan)
    used = indexes_used(plan)
    assert used, "\n".join(plan)
    if million.dialect == "postgresql":
        assert "Limit" in plan[0], "\n".join(plan)  # one page, then stop
    else:
        leading = leading_columns(million)
        assert {leading.get(name) for name in used} & {"status", "not_after"}, "\n".join(plan)


def test_the_table_really_holds_a_million_rows(million: Database) -> None:
    with million.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM certificates")).scalar_one() == ROWS
        assert conn.execute(text("SELECT count(*) FROM certificate_names")).scalar_one() == ROWS


def test_a_scan_is_detected(million: Database) -> None:
    """The detector is not blind: a substring search of the issuer DN must read every row."""
    plan = explain(million, CertificateQuery(issuer="Issuing CA 1", limit=MAX_PAGE_SIZE))
    if million.dialect == "postgresql":
        # PostgreSQL may walk the id index with a filter instead (it stops after one page).
        assert full_scans(million, plan) or any("Filter" in line for line in plan), "\n".join(plan)
    else:
        assert full_scans(million, plan), "\n".join(plan)

"""Listing stays index-driven at a million certificates, on SQLite and on PostgreSQL.

No timing: the test loads a million rows, refreshes the planner statistics, and asks each
database for the plan of the exact SELECT the repository runs (``EXPLAIN QUERY PLAN`` on
SQLite, ``EXPLAIN`` on PostgreSQL). A filter that made the database read the whole table
would show up as a scan.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text

from certfleet.inventory import MAX_PAGE_SIZE, CertificateQuery, Status
from certfleet.store import Database
from certfleet.store._repositories import SqlCertificateRepository
from tests.conftest import _pg_admin_url
from tests.inventory.synthetic import TABLES, load_postgresql, load_sqlite

ROWS = 1_000_000
NOW = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


class _PostgresLoad:
    """Loads the PostgreSQL copy, into a schema of its own, in a thread: the work happens in
    the server process, so it overlaps with the SQLite load running in this one. (A schema,
    not a database: dropping a database forces a checkpoint that writes out everything just
    loaded.)"""

    def __init__(self, pg_url: str, schema: str) -> None:
        self.database = _schema_database(pg_url, schema)
        with psycopg.connect(_plain(pg_url), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
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

    def result(self) -> None:
        self._thread.join()
        self.database.dispose()
        if self._error is not None:
            raise self._error


def _plain(pg_url: str) -> str:
    return pg_url.replace("postgresql+psycopg://", "postgresql://")


def _schema_database(pg_url: str, schema: str) -> Database:
    return Database(f"{pg_url}?options=-csearch_path%3D{schema}")


def _drop(pg_url: str, schema: str, scratch: Path) -> None:
    with psycopg.connect(_plain(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    shutil.rmtree(scratch, ignore_errors=True)


def _build(pg_url: str) -> dict[str, str]:
    """Both databases with a million certificates each; returns where they are.

    The SQLite file goes to a memory file system where there is one: the planner is the
    same, and 900 MB need not be written to disk and deleted again.
    """
    shm = Path("/dev/shm")
    scratch = Path(tempfile.mkdtemp(prefix="million-", dir=shm if shm.is_dir() else None))
    schema = f"million_{secrets.token_hex(4)}"
    try:
        postgresql = _PostgresLoad(pg_url, schema)  # starts loading in the background
        try:
            path = scratch / "certfleet.db"
            migrated = Database(f"sqlite:///{path}")
            migrated.upgrade()
            migrated.dispose()
            load_sqlite(path, ROWS, NOW)
        finally:
            postgresql.result()
    except BaseException:
        _drop(pg_url, schema, scratch)
        raise
    return {"sqlite": str(path), "schema": schema, "scratch": str(scratch)}


@contextmanager
def _shared_state(directory: Path) -> Iterator[dict[str, Any]]:
    """The shared build's record, read and written under an exclusive lock (held until the
    block ends, so a second worker waits for a build in progress instead of starting one)."""
    with (directory / "million.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = directory / "million.json"
        state: dict[str, Any] = json.loads(record.read_text()) if record.exists() else {}
        yield state
        record.write_text(json.dumps(state))


@pytest.fixture(scope="session")
def million_databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Database]]:
    """Both databases with a million certificates each (their own, not the shared test ones),
    built once per test run: loading them is most of this file's time. Under pytest-xdist
    the workers share one build through the run's common temporary directory: whichever
    worker needs it first builds it, the other uses it, and the last one to finish drops it.
    The PostgreSQL copy therefore lives in a schema of the suite's PostgreSQL database that
    every worker can reach, rather than in one worker's session database."""
    base = tmp_path_factory.getbasetemp()
    directory = base.parent if hasattr(request.config, "workerinput") else base
    pg_url = _pg_admin_url()
    with _shared_state(directory) as state:
        if not state.get("users"):  # the first to need it, or the last user has dropped it
            state.clear()
            state.update(_build(pg_url))
        state["users"] = state.get("users", 0) + 1
        sqlite, schema, scratch = state["sqlite"], state["schema"], Path(state["scratch"])
    databases = {"sqlite": Database(f"sqlite:///{sqlite}"), "postgresql": _schema_database(pg_url, schema)}
    try:
        yield databases
    finally:
        for database in databases.values():
            database.dispose()
        with _shared_state(directory) as state:
            state["users"] -= 1
            if state["users"] == 0:
                _drop(pg_url, schema, scratch)
                state.clear()


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

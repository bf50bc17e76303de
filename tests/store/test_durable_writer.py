"""The issuance ledger's writes on a SQLite file run on one kept connection with
synchronous=FULL; a transaction that fails rolls back, and one that broke its connection
gets a new one next time; PostgreSQL and in-memory SQLite keep pooled connections."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.store import Database
from certfleet.x509 import KeyType, generate_private_key

_FULL, _NORMAL = 2, 1


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'writer.db'}")
    with database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v INTEGER NOT NULL)")
    yield database
    database.dispose()


def _count(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one())


def test_one_kept_connection_durable_while_the_others_stay_normal(database: Database) -> None:
    writer = database.durable_writer()
    assert writer is not None and database.durable_writer() is writer
    seen = set()
    for value in range(3):
        with writer.transaction() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == _FULL
            conn.exec_driver_sql(f"INSERT INTO t VALUES ({value})")
            seen.add(id(conn.connection.dbapi_connection))
    assert len(seen) == 1 and _count(database) == 3
    with database.engine.connect() as other:
        assert other.exec_driver_sql("PRAGMA synchronous").scalar_one() == _NORMAL


def test_a_failed_transaction_keeps_nothing_and_a_broken_connection_is_replaced(database: Database) -> None:
    writer = database.durable_writer()
    assert writer is not None
    with writer.transaction() as conn:
        first = conn.connection.dbapi_connection
    with pytest.raises(ValueError), writer.transaction() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise ValueError("an item's failure")
    with writer.transaction() as conn:  # rolled back cleanly: the same connection, nothing kept
        assert conn.connection.dbapi_connection is first
    assert _count(database) == 0
    with pytest.raises(ValueError), writer.transaction() as conn:
        conn.invalidate()  # as a lost or corrupted connection is
        raise ValueError("the connection broke")
    with writer.transaction() as conn:
        assert conn.connection.dbapi_connection is not first
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == _FULL
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
    assert _count(database) == 1


def test_dispose_closes_the_kept_connection(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'closed.db'}")
    writer = database.durable_writer()
    assert writer is not None
    with writer.transaction() as conn:
        kept = conn.connection.dbapi_connection
    assert kept is not None
    database.dispose()
    with pytest.raises(sqlite3.ProgrammingError):
        kept.execute("SELECT 1")


def test_postgresql_and_memory_keep_pooled_connections(pg_database_url: str) -> None:
    for url in (pg_database_url, "sqlite://"):
        database = Database(url)
        try:
            assert database.durable_writer() is None
        finally:
            database.dispose()


def test_issuance_writes_on_the_kept_connection(platform: Platform) -> None:
    writer = platform.database.durable_writer()
    if writer is None:  # PostgreSQL: every transaction on a pooled connection, as before
        assert platform.database.dialect == "postgresql"
        return
    with writer.transaction() as conn:
        kept = conn.connection.dbapi_connection
    writes: list[object] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CERTIFICATES"):
            writes.append(conn.connection.dbapi_connection)

    event.listen(platform.database.engine, "before_cursor_execute", record)
    try:
        for index in range(3):
            key = generate_private_key(KeyType.EC_P256).public_key()
            request = IssuanceRequest("tls-server", key, (f"kept{index}.example.com",))
            platform.issuance.issue(request, actor="t", team="ops")
    finally:
        event.remove(platform.database.engine, "before_cursor_execute", record)
    assert len(writes) == 3 and all(w is kept for w in writes)

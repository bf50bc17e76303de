"""SQLite writers of one process queue on the database's write gate (woken the moment the
previous writer commits or rolls back), not in SQLite's sleeping busy handler; readers never
wait for it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from certfleet.store import Database


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    return db


def _second_writer(database: Database, wrote: threading.Event) -> threading.Thread:
    def write() -> None:
        with database.session() as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
        wrote.set()

    thread = threading.Thread(target=write)
    thread.start()
    return thread


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_a_writer_waits_on_the_gate_and_goes_when_the_first_ends(database: Database, outcome: str) -> None:
    first = database.engine.connect()
    transaction = first.begin()
    first.execute(text("INSERT INTO t VALUES (1)"))
    gate = first.connection.dbapi_connection.gate  # type: ignore[union-attr]
    assert gate is not None and gate.locked()
    wrote = threading.Event()
    thread = _second_writer(database, wrote)
    # A reader is not held by the gate (deferred BEGIN under WAL)...
    with database.session(read_only=True) as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    # ...the second writer is, until the first transaction ends.
    assert not wrote.is_set()
    if outcome == "commit":
        transaction.commit()
    else:
        transaction.rollback()
    first.close()
    thread.join(timeout=60)
    assert wrote.is_set()
    assert not gate.locked()
    with database.session(read_only=True) as session:
        expected = [1, 2] if outcome == "commit" else [2]
        assert sorted(session.execute(text("SELECT v FROM t")).scalars()) == expected


def test_a_failed_begin_gives_the_gate_back(database: Database, tmp_path: Path) -> None:
    # Another process's writer (a second engine stands in: its own gate) holds SQLite's lock.
    other = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    holder = other.engine.connect()
    held = holder.begin()
    holder.execute(text("INSERT INTO t VALUES (9)"))
    with database.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.execute("PRAGMA busy_timeout=50")  # type: ignore[union-attr]
        gate = raw.gate  # type: ignore[union-attr]
        with pytest.raises(Exception, match="locked"):
            conn.begin()
        assert gate is not None and not gate.locked()
    held.rollback()
    holder.close()
    with database.session() as session:  # the gate is free: this writer goes through
        session.execute(text("INSERT INTO t VALUES (3)"))

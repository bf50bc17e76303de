"""SQLite writers of one process queue on the database's write gate (woken the moment the
previous writer commits or rolls back), not in SQLite's sleeping busy handler; readers never
wait for it."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from certfleet.store import Database
from certfleet.store._database import WriterBusy


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
    # A writer outside certfleet (the sqlite3 shell, say) holds SQLite's lock: no gate stops it.
    foreign = sqlite3.connect(tmp_path / "gate.db", isolation_level=None)
    foreign.execute("BEGIN IMMEDIATE")
    foreign.execute("INSERT INTO t VALUES (9)")
    with database.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.execute("PRAGMA busy_timeout=50")  # type: ignore[union-attr]
        gate = raw.gate  # type: ignore[union-attr]
        with pytest.raises(Exception, match="locked"):
            conn.begin()
        assert gate is not None and not gate.locked()
    foreign.execute("ROLLBACK")
    foreign.close()
    with database.session() as session:  # the gate is free: this writer goes through
        session.execute(text("INSERT INTO t VALUES (3)"))


CHILD = """
import sys
from sqlalchemy import text
from certfleet.store import Database
database = Database(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
with database.session() as session:
    session.execute(text("INSERT INTO t VALUES (7)"))
database.dispose()
"""


def _waiting_on_flock(pid: int) -> bool:
    """/proc/locks lists a process blocked in flock() with "->" before its entry."""
    return any(
        line.split()[1:3] == ["->", "FLOCK"] and line.split()[5] == str(pid)
        for line in Path("/proc/locks").read_text().splitlines()
        if len(line.split()) > 5
    )


def test_writers_in_other_processes_queue_on_the_lock_file(database: Database, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    first = database.engine.connect()
    transaction = first.begin()
    first.execute(text("INSERT INTO t VALUES (1)"))
    lock_file = tmp_path / "gate.db-writer.lock"
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        # The other process waits in flock() on the lock file, not in SQLite's busy handler.
        deadline = time.monotonic() + 60
        while not _waiting_on_flock(child.pid):
            assert child.poll() is None, "the other writer did not wait"
            assert time.monotonic() < deadline, "the other writer never reached the gate"
            time.sleep(0.01)  # polling /proc/locks, not standing in for it
        transaction.commit()
        first.close()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
    with database.session(read_only=True) as session:
        assert sorted(session.execute(text("SELECT v FROM t")).scalars()) == [1, 7]


def test_the_lock_wait_is_the_configured_one_for_the_gate_and_sqlite(tmp_path: Path) -> None:
    # [server] sqlite_lock_wait_seconds reaches both bounds: the gate's wait for this process's
    # writers and SQLite's busy_timeout for another process's (a backup tool's) lock.
    db = Database(f"sqlite:///{tmp_path / 'wait.db'}", lock_wait_seconds=0.25)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 250
        assert conn.connection.dbapi_connection.gate.wait_seconds == 0.25  # type: ignore[union-attr]
    default = Database(f"sqlite:///{tmp_path / 'default.db'}")
    with default.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30000


def test_a_writer_behind_a_lock_held_past_the_wait_fails_as_locked(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    db = Database(f"sqlite:///{path}", lock_wait_seconds=0.2)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Exception, match="database is locked"), db.session() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with db.session() as session:  # and the next write goes once the lock is gone
        session.execute(text("INSERT INTO t VALUES (2)"))
    with db.session(read_only=True) as session:
        assert session.execute(text("SELECT v FROM t")).scalars().all() == [2]


def _hold_lock_file(tmp_path: Path, name: str) -> int:
    """Another process's writer, as the kernel sees it: its own open file, locked."""
    fd = os.open(tmp_path / f"{name}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_write_that_may_not_wait_is_refused_while_another_writes(
    database: Database, tmp_path: Path
) -> None:
    first = database.engine.connect()
    transaction = first.begin()
    first.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(WriterBusy), database.session(wait=False) as session:  # this process
        session.execute(text("INSERT INTO t VALUES (2)"))
    transaction.commit()
    first.close()
    other = _hold_lock_file(tmp_path, "gate.db")
    try:
        with pytest.raises(WriterBusy), database.session(wait=False) as session:  # another one
            session.execute(text("INSERT INTO t VALUES (3)"))
    finally:
        os.close(other)
    with database.session(wait=False) as session:  # nobody writing: it goes
        session.execute(text("INSERT INTO t VALUES (4)"))
    with database.session(read_only=True) as session:
        assert sorted(session.execute(text("SELECT v FROM t")).scalars()) == [1, 4]


def test_the_wait_for_another_process_is_bounded_and_leaves_no_lock_behind(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'bounded.db'}", lock_wait_seconds=0.2)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    other = _hold_lock_file(tmp_path, "bounded.db")
    try:
        with pytest.raises(Exception, match="database is locked"), db.session() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        os.close(other)  # the given-up wait gets the lock now, and gives it straight back
    with db.session() as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
    again = os.open(tmp_path / "bounded.db-writer.lock", os.O_RDWR)
    try:
        fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nothing of ours still holds it
    finally:
        os.close(again)
    with db.session(read_only=True) as session:
        assert session.execute(text("SELECT v FROM t")).scalars().all() == [2]
    db.dispose()

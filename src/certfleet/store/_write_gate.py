"""SQLite's write gate: one writer at a time across this process's threads and every
process on the same database file, and the connection set-up that routes each write
transaction through it (see :class:`WriteGate`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from sqlalchemy.pool import ConnectionPoolEntry

__all__ = [
    "DEFAULT_LOCK_WAIT_SECONDS",
    "GatedConnection",
    "WriteGate",
    "WriterBusy",
    "sqlite_begin",
    "sqlite_connect",
]


# How long a writer waits for another (the write gate's thread lock and SQLite's
# busy_timeout): ``[server] sqlite_lock_wait_seconds``, this by default.
DEFAULT_LOCK_WAIT_SECONDS = 30.0


class WriterBusy(sqlite3.OperationalError):
    """A write that was asked not to wait found another writer at the gate (see
    :meth:`Database.session`'s ``wait``)."""


class WriteGate:
    """The door every SQLite write transaction of this database passes, one at a time: a
    lock for this process's threads, then an exclusive ``flock`` on ``<database>-writer.lock``
    for every process on the same file (``serve`` workers, the CLI). Both wake the next writer
    the moment the previous one commits or rolls back; SQLite's own busy handler, which the
    writers met before, polls with sleeps of 1 to 100 ms and lets a freed lock sit unnoticed.
    SQLite's lock still guards the file: the gate only orders the writers that queue for it.
    Both waits together are bounded by ``wait_seconds``; a writer that must not wait at all
    (``acquire(wait=False)``) is refused at once with :class:`WriterBusy`.
    Written by hand because neither SQLAlchemy nor sqlite3 offers a waiting writer queue."""

    def __init__(self, lock_file: Path | None, wait_seconds: float) -> None:
        self._threads = threading.Lock()
        self._lock_file = lock_file
        self.wait_seconds = wait_seconds
        self._fd: int | None = None
        self._pid = 0
        # flock() cannot time out: a wait for another process runs in this one thread, and
        # the writer waits on its result for as long as it may. A wait given up on (its
        # writer refused as locked) is still queued there: the lock it gets later is given
        # back at once, and until then every writer queues behind it in the same thread, so
        # no writer ever takes the lock on this process's descriptor beside it.
        self._waiter: ThreadPoolExecutor | None = None
        self._abandoned: Future[None] | None = None

    def locked(self) -> bool:
        return self._threads.locked()

    def acquire(self, *, wait: bool = True) -> None:
        started = time.monotonic()
        if not self._threads.acquire(timeout=self.wait_seconds if wait else 0):
            raise sqlite3.OperationalError("database is locked") if wait else WriterBusy("writer busy")
        try:
            fd = self._file()
            if fd is not None:
                self._lock(fd, self.wait_seconds - (time.monotonic() - started) if wait else None)
        except BaseException:
            self._threads.release()
            raise

    def _lock(self, fd: int, wait_seconds: float | None) -> None:
        """``flock`` ``fd`` (called holding the thread lock); ``wait_seconds`` None: no wait."""
        if self._abandoned is None or self._abandoned.done():
            self._abandoned = None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
        if wait_seconds is None:
            raise WriterBusy("writer busy")
        if self._waiter is None:
            self._waiter = ThreadPoolExecutor(1, thread_name_prefix="certfleet-write-gate")
        waiting = self._waiter.submit(fcntl.flock, fd, fcntl.LOCK_EX)  # without the GIL
        try:
            waiting.result(timeout=max(wait_seconds, 0.0))
        except FutureTimeout:
            # Given up on: a lock it gets later is released in the waiting thread, before the
            # next writer's wait starts there (a callback added after it is done runs here).
            waiting.add_done_callback(lambda done: _unlock_if_locked(fd, done))
            self._abandoned = waiting
            raise sqlite3.OperationalError("database is locked") from None

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int | None:
        """This process's descriptor of the lock file (a forked child opens its own: a lock
        is held by an open file, and a shared one would let parent and child in together)."""
        if self._lock_file is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:  # e.g. a read-only directory: SQLite's own lock still orders writers
                self._lock_file = None
                return None
            self._pid = os.getpid()
            self._waiter, self._abandoned = None, None  # a forked child has no such thread
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            if self._waiter is not None:
                self._waiter.shutdown(wait=False, cancel_futures=True)
            os.close(self._fd)
        self._fd = None
        self._waiter, self._abandoned = None, None


def _unlock_if_locked(fd: int, waited: Future[None]) -> None:
    if not waited.cancelled() and waited.exception() is None:
        with contextlib.suppress(OSError):  # the descriptor closed meanwhile: nothing held
            fcntl.flock(fd, fcntl.LOCK_UN)


class GatedConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions pass its database's :class:`WriteGate`,
    taken before ``BEGIN IMMEDIATE`` and given back once the commit or rollback returned."""

    gate: WriteGate | None = None
    holding = False

    def enter_write(self, *, wait: bool = True) -> None:
        if self.gate is None:
            return
        self.gate.acquire(wait=wait)
        self.holding = True

    def leave_write(self) -> None:
        if self.holding and self.gate is not None:
            self.holding = False
            self.gate.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.leave_write()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.leave_write()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.leave_write()


def sqlite_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" hook issue BEGIN itself (see sqlite_begin).
    dbapi_connection.isolation_level = None
    gate = getattr(dbapi_connection, "gate", None)
    wait = gate.wait_seconds if isinstance(gate, WriteGate) else DEFAULT_LOCK_WAIT_SECONDS
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={round(wait * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def sqlite_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that reads and
    # then writes can fail at once with SQLITE_BUSY when another writer got there first,
    # ignoring busy_timeout. Read-only sessions use a deferred BEGIN: under WAL they never
    # wait for the writer, so API reads do not queue behind issuance.
    options = conn.get_execution_options()
    if options.get("certfleet_read_only"):
        conn.exec_driver_sql("BEGIN")
        return
    raw = conn.connection.dbapi_connection
    gated = raw if isinstance(raw, GatedConnection) else None
    if gated is not None:
        gated.enter_write(wait=not options.get("certfleet_no_wait"))
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        if gated is not None:
            gated.leave_write()
        raise

"""The revocation generation: bumped in the transaction of every change that alters an OCSP
answer, read by every OCSP request before it answers from memory.

Reading it must cost almost nothing, or the in-memory cache gains nothing:

* **SQLite**: each thread keeps one raw ``sqlite3`` connection that never writes.
  ``PRAGMA data_version`` on it changes only when another connection (of this process or of
  any other) committed to the file, so the row is re-read only then; otherwise the answer is
  the value this thread read last, and the check is one PRAGMA on a local file (a few
  microseconds). The PRAGMA is read *before* the row: a commit landing between the two makes
  the next PRAGMA differ, so it can only cause one extra read, never a missed one.
* **PostgreSQL**: there is no such local signal. LISTEN/NOTIFY is asynchronous: a
  notification can arrive after a client has already been told the revocation committed, and
  a request answered in that window would serve a stale "good". So each request reads the row
  (one single-row primary-key SELECT, prepared, on an autocommit connection: one round trip,
  no pool checkout, no BEGIN/ROLLBACK), from a read that started after the request arrived,
  so it sees every transaction committed before that. Concurrent requests share such a read
  (see :class:`_PostgresRead`): one connection per process, one query per burst.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from typing import Any, Protocol

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from certfleet.store._revocation_models import RevocationGenerationRow
from certfleet.store._sql import dialect_insert

__all__ = ["GenerationReader", "bump_generation"]

_SELECT = "SELECT value FROM revocation_generation WHERE id = 1"

# A connection must never be used on both sides of a fork (the lead's multi-worker serve may
# fork after the platform is open): a child abandons what its parent opened.
_fork_epoch = 0


def _forked() -> None:
    global _fork_epoch
    _fork_epoch += 1


os.register_at_fork(after_in_child=_forked)


def bump_generation(session: Session) -> None:
    """Advance the generation in ``session``'s transaction (created at 1 if the row is
    missing). On PostgreSQL the row stays locked until commit, so concurrent bumps queue."""
    table = RevocationGenerationRow.__table__
    stmt = dialect_insert(session, RevocationGenerationRow).values(id=1, value=1)
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"value": table.c.value + 1}))


class _Watch(Protocol):
    def read(self) -> int: ...
    def close(self) -> None: ...


class _SqliteWatch:
    def __init__(self, path: str) -> None:
        # Autocommit (isolation_level None): each statement is its own short read, so no
        # read transaction is ever left open to hold back WAL checkpoints.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._cursor = self._conn.cursor()
        self._version: int | None = None
        self._value = 0

    def read(self) -> int:
        cursor = self._cursor
        cursor.execute("PRAGMA data_version")
        version = cursor.fetchone()[0]
        if version != self._version:
            cursor.execute(_SELECT)
            row = cursor.fetchone()
            self._value = int(row[0]) if row is not None else 0
            self._version = version
        return self._value

    def close(self) -> None:
        self._conn.close()


class _PostgresRead:
    """One connection per process, shared by every thread, reads coalesced strictly.

    A caller takes a ticket; it may return the value of a read that *started* after its
    ticket was taken (that read sees every transaction committed before the caller asked),
    never one already in flight. So while one read is on the wire, everyone who arrives waits
    for the next, and one round trip answers them all: a burst of misses in the thread pool
    costs one query, and the process holds one connection, not one per thread.
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._cond = threading.Condition()
        self._tickets = 0  # handed out
        self._covered = 0  # every ticket up to this one is answered by a completed read
        self._reading = False
        self._value = 0
        self._conn: Any = None

    def read(self) -> int:
        with self._cond:
            self._tickets += 1
            ticket = self._tickets
            while self._covered < ticket:
                if not self._reading:
                    self._reading = True
                    start = self._tickets  # everyone holding a ticket arrived before this read
                    break
                self._cond.wait()
            else:
                return self._value
        try:
            value = self._query()
        except BaseException:
            with self._cond:
                self._reading = False
                self._cond.notify_all()  # a waiter takes its own turn at reading
            raise
        with self._cond:
            self._value, self._covered, self._reading = value, start, False
            self._cond.notify_all()
        return value

    def _query(self) -> int:
        import psycopg  # only a PostgreSQL platform needs it

        for attempt in (1, 2):
            try:
                if self._conn is None:
                    self._conn = psycopg.connect(self._conninfo, autocommit=True)
                row = self._conn.execute(_SELECT, prepare=True).fetchone()
                return int(row[0]) if row is not None else 0
            except psycopg.OperationalError:
                # A dropped connection (a server restart): one fresh connection, once.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class _EngineRead:
    """Any other database (an in-memory SQLite): the row through the engine each time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read(self) -> int:
        with self._engine.connect() as conn:
            value = conn.execute(text(_SELECT)).scalar()
        return int(value) if value is not None else 0

    def close(self) -> None:
        pass


class GenerationReader:
    """The current revocation generation, read as described in the module docstring: on
    SQLite one read-only connection per thread (the event loop's and the thread pool's), on
    PostgreSQL one per process; all closed by :meth:`close`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[_Watch] = []
        self._epoch = _fork_epoch
        self._pg: _PostgresRead | None = None
        self._pg_epoch = _fork_epoch
        url = engine.url
        self._sqlite_path: str | None = None
        self._pg_conninfo: str | None = None
        if url.get_backend_name() == "sqlite":
            memory = not url.database or url.database == ":memory:" or url.query.get("mode") == "memory"
            self._sqlite_path = None if memory else url.database
        elif url.get_backend_name() == "postgresql":
            self._pg_conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def local(self) -> bool:
        """No network involved: SQLite (a PRAGMA on a file, or an in-memory database)."""
        return self._pg_conninfo is None

    def current(self) -> int:
        if self._pg_conninfo is not None:
            return self._shared().read()
        local = self._local
        watch: _Watch | None = getattr(local, "watch", None)
        if watch is None or local.epoch != _fork_epoch:
            watch = self._open()
        try:
            return watch.read()
        except Exception:  # noqa: BLE001 - a dropped connection (server restart): one fresh try
            self._discard(watch)
            return self._open().read()

    def _shared(self) -> _PostgresRead:
        shared = self._pg
        if shared is None or self._pg_epoch != _fork_epoch:
            with self._lock:
                if self._pg is None or self._pg_epoch != _fork_epoch:
                    # After a fork the parent's connection is abandoned, never closed here.
                    self._pg, self._pg_epoch = _PostgresRead(self._pg_conninfo or ""), _fork_epoch
                shared = self._pg
        return shared

    def _open(self) -> _Watch:
        watch: _Watch
        if self._sqlite_path is not None:
            watch = _SqliteWatch(self._sqlite_path)
        else:
            watch = _EngineRead(self._engine)
        self._local.watch = watch
        self._local.epoch = _fork_epoch
        with self._lock:
            if self._epoch != _fork_epoch:  # the parent's connections are not ours to close
                self._opened, self._epoch = [], _fork_epoch
            self._opened.append(watch)
        return watch

    def _discard(self, watch: _Watch) -> None:
        self._local.watch = None
        with self._lock:
            if watch in self._opened:
                self._opened.remove(watch)
        with contextlib.suppress(Exception):  # already broken: nothing more to release
            watch.close()

    def close(self) -> None:
        """Close every connection this reader opened (a later read opens a new one)."""
        with self._lock:
            opened, self._opened = (self._opened if self._epoch == _fork_epoch else []), []
            if self._pg is not None and self._pg_epoch == _fork_epoch:
                opened.append(self._pg)
        for watch in opened:
            with contextlib.suppress(Exception):  # closing at shutdown: nothing to report
                watch.close()

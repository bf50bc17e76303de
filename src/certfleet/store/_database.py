"""Engines, sessions and migrations."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from certfleet.errors import ConfigurationError
from certfleet.store._pool_log import quiet_lost_connections

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported by the methods that migrate (about 0.1 s: a command that only reads
# does without it).

__all__ = ["Database", "WriterBusy"]

_MIGRATIONS = Path(__file__).parent / "migrations"

# PostgreSQL: the advisory lock every ``db upgrade`` (and ``serve``'s start) holds while it
# migrates, so two nodes of one database never migrate at once; the second waits, then finds
# nothing left to apply. Any constant works: it only has to be the same for every node.
_MIGRATION_LOCK = 0x63666D67  # "cfmg"
_MIGRATION_LOCK_WAIT = "120s"  # another node's migration: wait for it, not for ever
# While migrating, a DDL statement that waits longer than this for a table lock gives up
# (and the migration is retried) instead of queueing every live request behind it:
# PostgreSQL makes later lockers wait behind a waiting ACCESS EXCLUSIVE request.
MIGRATION_LOCK_TIMEOUT_SECONDS = 2.0
_MIGRATION_ATTEMPTS = 5
# A node whose database host vanished fails a new connection in this long, rather than
# after the kernel's TCP timeout (minutes): health checks and requests answer 503 instead.
_CONNECT_TIMEOUT_SECONDS = 5
# /healthz may be polled often by load balancers: one probe of the database per second.
_HEALTH_PROBE_SECONDS = 1.0


# How long a writer waits for another (the write gate's thread lock and SQLite's
# busy_timeout): ``[server] sqlite_lock_wait_seconds``, this by default.
DEFAULT_LOCK_WAIT_SECONDS = 30.0


class WriterBusy(sqlite3.OperationalError):
    """A write that was asked not to wait found another writer at the gate (see
    :meth:`Database.session`'s ``wait``)."""


class _WriteGate:
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


class _GatedConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions pass its database's :class:`_WriteGate`,
    taken before ``BEGIN IMMEDIATE`` and given back once the commit or rollback returned."""

    gate: _WriteGate | None = None
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


def _sqlite_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" hook issue BEGIN itself (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    gate = getattr(dbapi_connection, "gate", None)
    wait = gate.wait_seconds if isinstance(gate, _WriteGate) else DEFAULT_LOCK_WAIT_SECONDS
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={round(wait * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that reads and
    # then writes can fail at once with SQLITE_BUSY when another writer got there first,
    # ignoring busy_timeout. Read-only sessions use a deferred BEGIN: under WAL they never
    # wait for the writer, so API reads do not queue behind issuance.
    options = conn.get_execution_options()
    if options.get("certfleet_read_only"):
        conn.exec_driver_sql("BEGIN")
        return
    raw = conn.connection.dbapi_connection
    gated = raw if isinstance(raw, _GatedConnection) else None
    if gated is not None:
        gated.enter_write(wait=not options.get("certfleet_no_wait"))
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        if gated is not None:
            gated.leave_write()
        raise


class Database:
    """One database: SQLite (embedded, WAL) or PostgreSQL (``postgresql+psycopg://``)."""

    def __init__(
        self, url: str, *, echo: bool = False, lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS
    ) -> None:
        self.url = url
        self._gate: _WriteGate | None = None  # SQLite only
        try:
            if url.startswith("sqlite"):
                self.engine: Engine = create_engine(
                    url, echo=echo, connect_args={"factory": _GatedConnection}
                )
                database_file = self.engine.url.database
                in_memory = not database_file or database_file == ":memory:"
                gate = _WriteGate(
                    None if in_memory else Path(f"{database_file}-writer.lock"), lock_wait_seconds
                )
                self._gate = gate

                def give_gate(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
                    if isinstance(dbapi_connection, _GatedConnection):
                        dbapi_connection.gate = gate

                event.listen(self.engine, "connect", give_gate)
                event.listen(self.engine, "connect", _sqlite_connect)
                event.listen(self.engine, "begin", _sqlite_begin)
            elif url.startswith("postgresql"):
                self.engine = create_engine(
                    url,
                    echo=echo,
                    pool_pre_ping=True,
                    pool_size=10,
                    max_overflow=20,
                    connect_args={"connect_timeout": _CONNECT_TIMEOUT_SECONDS},
                )
                quiet_lost_connections()
            else:
                raise ConfigurationError(
                    f"unsupported database URL {url.split(':')[0]!r}: use sqlite or postgresql"
                )
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ConfigurationError(f"cannot open database: {exc}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(certfleet_read_only=True), expire_on_commit=False
        )
        self._no_wait_sessions = sessionmaker(
            self.engine.execution_options(certfleet_no_wait=True), expire_on_commit=False
        )
        self._probe_lock = threading.Lock()
        self._probed: tuple[float, str | None] = (-_HEALTH_PROBE_SECONDS, None)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, read_only: bool = False, wait: bool = True) -> Iterator[Session]:
        """A transaction: committed when the block ends normally, rolled back otherwise.

        ``read_only`` is a promise the block only reads; on SQLite it avoids the write lock.
        ``wait=False``: on SQLite, a write that would queue behind another writer raises
        :class:`WriterBusy` instead, for writes a reader may skip (an OCSP answer put in the
        shared cache); on PostgreSQL, where writers of different rows do not queue, no change.
        """
        if read_only:
            session = self._read_sessions()
        else:
            session = (self._sessions if wait else self._no_wait_sessions)()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def _alembic_config(self) -> Config:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        config.attributes["engine"] = self.engine
        return config

    def upgrade(self, *, lock_timeout_seconds: float = MIGRATION_LOCK_TIMEOUT_SECONDS) -> list[str]:
        """Apply pending migrations; return the revisions applied.

        On PostgreSQL the migration holds an advisory lock (two nodes never migrate at once)
        and runs with ``lock_timeout``: a statement that cannot get its table lock in
        ``lock_timeout_seconds`` rolls the migration back and it is tried again, up to five
        times, so live traffic on the old version never queues behind it for long."""
        from alembic import command

        before = self.current_revisions()
        try:
            if self.dialect == "postgresql":
                self._upgrade_locked(lock_timeout_seconds)
            else:
                command.upgrade(self._alembic_config(), "heads")
        except OperationalError as exc:
            raise ConfigurationError(f"cannot migrate database: {exc.orig}") from exc
        return sorted(set(self.current_revisions()) - set(before))

    def _upgrade_locked(self, lock_timeout_seconds: float) -> None:
        from alembic import command

        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"SET lock_timeout = '{_MIGRATION_LOCK_WAIT}'")
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
            conn.commit()
            try:
                conn.exec_driver_sql(f"SET lock_timeout = '{int(lock_timeout_seconds * 1000)}ms'")
                conn.commit()
                for attempt in range(1, _MIGRATION_ATTEMPTS + 1):
                    config = self._alembic_config()
                    config.attributes["connection"] = conn
                    try:
                        command.upgrade(config, "heads")
                        break
                    except OperationalError as exc:
                        conn.rollback()
                        if attempt == _MIGRATION_ATTEMPTS or getattr(exc.orig, "sqlstate", "") != "55P03":
                            raise  # 55P03: lock_not_available, the only error worth a retry
                        time.sleep(0.2 * attempt)  # let the live transactions holding it finish
            finally:
                conn.rollback()
                conn.exec_driver_sql("RESET lock_timeout")
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
                conn.commit()

    def current_revisions(self) -> tuple[str, ...]:
        """The applied revisions (one per branch: feature areas add independent branches)."""
        from alembic.runtime.migration import MigrationContext

        try:
            with self.engine.connect() as conn:
                return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
        except OperationalError as exc:
            raise ConfigurationError(f"cannot open database: {exc.orig}") from exc

    def branches(self) -> list[tuple[str, str | None]]:
        """(head, the applied revision on that head's branch) for each Alembic branch of this
        version's migrations: None when the branch has nothing applied past its branch point
        (or the database is empty). A revision this version does not know (a newer node
        migrated) is in :meth:`current_revisions` but on no branch here."""
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic_config())
        current = set(self.current_revisions())
        found = []
        for head in sorted(script.get_heads()):
            line = [r.revision for r in script.iterate_revisions(head, "base")]
            found.append((head, next((r for r in line if r in current), None)))
        return found

    def known_revisions(self) -> frozenset[str]:
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic_config())
        return frozenset(r.revision for r in script.walk_revisions())

    def head_revisions(self) -> tuple[str, ...]:
        from alembic.script import ScriptDirectory

        return tuple(sorted(ScriptDirectory.from_config(self._alembic_config()).get_heads()))

    def clock(self) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
        """(local time before, the database's clock, local time after) one round trip: the
        database's ``clock_timestamp()`` on PostgreSQL; SQLite has no clock of its own (it
        reads this machine's), so there the middle value is this machine's time too."""
        before = dt.datetime.now(dt.UTC)
        if self.dialect != "postgresql":
            return before, before, before
        try:
            with self.engine.connect() as conn:
                before = dt.datetime.now(dt.UTC)
                database_now = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
                after = dt.datetime.now(dt.UTC)
        except (OperationalError, InterfaceError) as exc:
            raise ConfigurationError(f"cannot open database: {exc.orig}") from exc
        return before, database_now.astimezone(dt.UTC), after

    def unavailable(self) -> str | None:
        """Why this database cannot be reached now (one line), or None when a ``SELECT 1``
        answers. Probed at most once a second: health checks may come often."""
        with self._probe_lock:
            probed_at, reason = self._probed
            now = time.monotonic()
            if now - probed_at < _HEALTH_PROBE_SECONDS:
                return reason
            try:
                with self.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                reason = None
            except (OperationalError, InterfaceError) as exc:
                reason = "database unreachable: " + " ".join(str(exc.orig).split())
            self._probed = (time.monotonic(), reason)
            return reason

    def dispose(self) -> None:
        self.engine.dispose()
        if self._gate is not None:
            self._gate.close()

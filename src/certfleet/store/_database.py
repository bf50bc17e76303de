"""Engines, sessions and migrations (SQLite's write gate: ``_write_gate``)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from certfleet.errors import ConfigurationError
from certfleet.store._durable_writer import DurableWriter
from certfleet.store._pool_log import quiet_lost_connections
from certfleet.store._write_gate import (
    DEFAULT_LOCK_WAIT_SECONDS,
    GatedConnection,
    WriteGate,
    WriterBusy,
    sqlite_begin,
    sqlite_connect,
)

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


class Database:
    """One database: SQLite (embedded, WAL) or PostgreSQL (``postgresql+psycopg://``)."""

    def __init__(
        self, url: str, *, echo: bool = False, lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS
    ) -> None:
        self.url = url
        self._gate: WriteGate | None = None  # SQLite only
        self._writer: DurableWriter | None = None  # a SQLite file's (it connects on first use)
        try:
            if url.startswith("sqlite"):
                self.engine: Engine = create_engine(url, echo=echo, connect_args={"factory": GatedConnection})
                database_file = self.engine.url.database
                in_memory = not database_file or database_file == ":memory:"
                gate = WriteGate(
                    None if in_memory else Path(f"{database_file}-writer.lock"), lock_wait_seconds
                )
                self._gate = gate
                # An in-memory database lives per thread (SQLAlchemy's SingletonThreadPool):
                # no connection can serve every thread there.
                self._writer = None if in_memory else DurableWriter(self.engine)

                def give_gate(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
                    if isinstance(dbapi_connection, GatedConnection):
                        dbapi_connection.gate = gate

                event.listen(self.engine, "connect", give_gate)
                event.listen(self.engine, "connect", sqlite_connect)
                event.listen(self.engine, "begin", sqlite_begin)
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

    def durable_writer(self) -> DurableWriter | None:
        """The issuance ledger's kept write connection on a SQLite file (see DurableWriter);
        None on PostgreSQL and in memory."""
        return self._writer

    def dispose(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.engine.dispose()
        if self._gate is not None:
            self._gate.close()

"""The issuance ledger's write transactions on SQLite: one connection per process, kept open.

The ledger's two transactions per certificate (serial reserved before signing; certificate,
audit entry and event after) used to check a connection out of the pool for each, and the
pool hands its idle connections round: every transaction began on a connection whose page
cache another connection's commit had voided, and paid the checkout, the reset on return and
``PRAGMA synchronous`` set and unset around it. Measured in process (the real issuance
service, SCEP PKIOperations on one thread, 300 each, alternating, issue 14): 3.0-4.0 ms of
CPU per PKIOperation on a kept connection against 4.0-4.9 ms on pooled ones.

SQLite has one writer at a time anyway (the write gate), so one kept connection behind a lock
serializes nothing that was not serialized: the ledger's callers still batch through their
group committers. The connection runs with ``synchronous=FULL`` for good (it carries only
these transactions, each durable when it commits). A transaction that fails leaves it in use
if its rollback left it clean; otherwise it is closed and the next transaction opens another.
PostgreSQL keeps a pooled connection per transaction: its server, not the client, caches
pages, and its transactions wait on the network, which concurrent connections overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

__all__ = ["DurableWriter"]


class DurableWriter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._conn: Connection | None = None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE through the write gate), durable when the
        block ends normally, rolled back when it raises."""
        with self._lock:
            conn = self._conn
            if conn is None:
                conn = self._conn = self._open()
            try:
                with conn.begin():
                    yield conn
            except BaseException:
                if conn.invalidated or conn.in_transaction():
                    self._discard()
                raise

    def close(self) -> None:
        with self._lock:
            self._discard()

    def _open(self) -> Connection:
        conn = self._engine.connect()
        try:
            raw = conn.connection.dbapi_connection
            assert raw is not None  # a new connection's: checked out, never detached
            raw.execute("PRAGMA synchronous=FULL")  # outside a transaction: before the first
        except BaseException:
            conn.close()
            raise
        return conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()  # never back into the pool with synchronous=FULL
            conn.close()

"""API tokens read for authentication: one statement on the DBAPI connection per request."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any

from certfleet.access import ApiToken, NamePattern, Scope
from certfleet.store._database import Database
from certfleet.store._sql import raw_utc

__all__ = ["OneRowReader", "SqlTokenReader"]


class OneRowReader:
    """One SELECT by primary key on a DBAPI connection: how the per-request credential reads
    (API tokens, EST credentials) stay cheap while reading what is committed now, so a
    revocation committed by any process or node refuses the very next request.

    Through an ORM session such a look-up cost about 1 ms of CPU per request under load
    (session, BEGIN, identity map, ROLLBACK); one SELECT on a DBAPI connection costs about
    0.04 ms. A single SELECT is atomic by itself: SQLite runs it in autocommit mode, and on
    PostgreSQL the pool rolls the implicit read transaction back on return.

    On a SQLite file each thread reads through a connection of its own that never writes
    (opened on first use, reopened in a forked worker), never the pool: :attr:`local` is
    then True and the API may read on its event loop, where waiting for a pool checkout would
    stall every request; and many request threads reading at once neither queue for the
    pool's few connections nor open and close overflow connections (each open runs the
    pool's connect hooks). A WAL reader never waits for writers. ``sql`` names its one
    parameter ``{id}``.
    """

    def __init__(self, database: Database, sql: str) -> None:
        self._engine = database.engine
        self._sql = sql.format(id=":id" if database.dialect == "sqlite" else "%(id)s")  # sqlite3 / psycopg
        url = self._engine.url
        in_memory = not url.database or url.database == ":memory:" or url.query.get("mode") == "memory"
        self._sqlite_path = url.database if url.get_backend_name() == "sqlite" and not in_memory else None
        self._local = threading.local()

    @property
    def local(self) -> bool:
        """True when :meth:`row` does no network I/O and never waits for the pool."""
        return self._sqlite_path is not None

    def row(self, row_id: str) -> Any:
        """The row whose id is ``row_id``, or None."""
        if self._sqlite_path is None:
            return self._pooled_row(row_id)
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "pid", None) != os.getpid():
            # A connection opened before a fork is abandoned in the child, never used.
            connection = sqlite3.connect(self._sqlite_path, isolation_level=None, check_same_thread=False)
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection.execute(self._sql, {"id": row_id}).fetchone()

    def _pooled_row(self, row_id: str) -> Any:
        connection: Any = self._engine.raw_connection()
        try:
            cursor: Any = connection.cursor()
            try:
                cursor.execute(self._sql, {"id": row_id})
                return cursor.fetchone()
            finally:
                cursor.close()
        except Exception:
            # A raw connection skips SQLAlchemy's disconnect handling: a connection that failed
            # (the database restarted) must leave the pool, not be reset and handed out again
            # (the reset fails too, and the pool logs it with a traceback).
            connection.invalidate()
            raise
        finally:
            connection.close()


class SqlTokenReader:
    """The token row behind every authenticated REST request, read afresh each time (see
    :class:`OneRowReader`)."""

    def __init__(self, database: Database) -> None:
        self._rows = OneRowReader(
            database,
            "SELECT team, scope, allow_names_json, secret_hash, created_at, description, revoked_at"
            " FROM api_tokens WHERE id = {id}",
        )

    @property
    def local(self) -> bool:
        """True when :meth:`get` does no network I/O and never waits for the pool."""
        return self._rows.local

    def get(self, token_id: str) -> ApiToken | None:
        row = self._rows.row(token_id)
        if row is None:
            return None
        team, scope, allow_names, secret_hash, created_at, description, revoked_at = row
        return ApiToken(
            id=token_id,
            team=team,
            scope=Scope(scope),
            allow_names=tuple(NamePattern(p) for p in json.loads(allow_names)),
            secret_hash=secret_hash,
            created_at=raw_utc(created_at),
            description=description,
            revoked_at=raw_utc(revoked_at) if revoked_at is not None else None,
        )

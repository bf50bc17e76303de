"""Node heartbeats: every serving node writes one row every few seconds (the ``nodes.heartbeat``
per-node job) with its version and its clock's skew against the database's clock, stamped
with the database's time, so one ``certfleet db check`` shows every node of a cluster."""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

from sqlalchemy import Column, DateTime, Float, String, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from certfleet import __version__
from certfleet.store._database import Database
from certfleet.store.models import Base

__all__ = ["STALE_AFTER_SECONDS", "NodeBeat", "NodeHeartbeats", "node_beats"]

# Three missed beats of the 10 s ``nodes.heartbeat`` job (services.background_jobs).
STALE_AFTER_SECONDS = 30.0

_NODES = Table(
    "nodes",
    Base.metadata,
    Column("node_id", String(200), primary_key=True),
    Column("version", String(40), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("clock_skew_seconds", Float, nullable=False),
)


@dataclass(frozen=True)
class NodeBeat:
    node_id: str
    version: str
    started_at: dt.datetime
    last_seen_at: dt.datetime  # the database's clock
    clock_skew_seconds: float  # > 0: the node's clock is ahead of the database's


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite keeps no zone: every value written here is UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class NodeHeartbeats:
    def __init__(self, database: Database, version: str = __version__, node_id: str | None = None) -> None:
        self._database = database
        # The serving process that runs the node's per-node jobs: host and process id.
        self.node_id = (node_id or f"{socket.gethostname()}:{os.getpid()}")[:200]
        self._version = version[:40]
        self._started: dt.datetime | None = None

    def beat(self) -> float:
        """Record this node as seen now; return its clock skew in seconds."""
        before, database_now, after = self._database.clock()
        skew = ((before + (after - before) / 2) - database_now).total_seconds()
        self._started = self._started or database_now
        values = {
            "node_id": self.node_id,
            "version": self._version,
            "started_at": self._started,
            "last_seen_at": database_now,
            "clock_skew_seconds": skew,
        }
        insert = pg_insert if self._database.dialect == "postgresql" else sqlite_insert
        statement = insert(_NODES).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[_NODES.c.node_id],
            set_={k: statement.excluded[k] for k in values if k != "node_id"},
        )
        with self._database.engine.begin() as conn:
            conn.execute(statement)
        return skew


def node_beats(database: Database) -> list[NodeBeat]:
    """Every node that ever beat, the most recently seen first."""
    with database.engine.connect() as conn:
        rows = conn.execute(select(_NODES).order_by(_NODES.c.last_seen_at.desc(), _NODES.c.node_id)).all()
    return [
        NodeBeat(r.node_id, r.version, _utc(r.started_at), _utc(r.last_seen_at), float(r.clock_skew_seconds))
        for r in rows
    ]

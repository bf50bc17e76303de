"""Alembic's environment: certfleet drives every migration through
:meth:`certfleet.store.Database.upgrade`, which passes its engine, or on PostgreSQL the one
connection that holds the migration advisory lock and ``lock_timeout``.

The rule for migrations after the baseline (``0031_nodes`` and later; tested by
tests/store/test_migrations_online.py): they only EXPAND the schema, so the previous
version keeps serving while a rolling upgrade migrates. See README.md beside this file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

from certfleet.store.models import Base

config = context.config
given = config.attributes.get("connection")
engine = config.attributes.get("engine")
if not isinstance(given, Connection) and not isinstance(engine, Engine):  # pragma: no cover
    raise RuntimeError("certfleet migrations run through certfleet.store.Database.upgrade()")


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


if isinstance(given, Connection):
    _migrate(given)
else:
    assert isinstance(engine, Engine)
    with engine.connect() as connection:
        _migrate(connection)

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from certfleet.store.models import Base

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):  # pragma: no cover - only certfleet drives migrations
    raise RuntimeError("certfleet migrations run through certfleet.store.Database.upgrade()")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()

"""Storage: SQLAlchemy models, repositories implementing the domain interfaces, Alembic
migrations. SQLite (WAL) embedded by default; PostgreSQL for several nodes.

The rule of the layers: the domain packages own their values and ports; the services
orchestrate one use case per module in one transaction; this package implements the ports
and nothing else. It imports domain packages only, never ``certfleet.services`` (an
import-linter contract says so)."""

from __future__ import annotations

from certfleet.store._database import Database
from certfleet.store._sealed_rows import open_secret_box
from certfleet.store._unit_of_work import SqlUnitOfWork, Store

__all__ = ["Database", "SqlUnitOfWork", "Store", "open_secret_box"]

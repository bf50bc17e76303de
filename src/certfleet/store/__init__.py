"""Storage: SQLAlchemy models, repositories implementing the domain interfaces, Alembic
migrations. SQLite (WAL) embedded by default; PostgreSQL for several nodes.

The rule of the layers: the domain packages own their values and ports; the services
orchestrate one use case per module in one transaction; this package implements the ports
and nothing else. It imports domain packages only, never ``certfleet.services`` (an
import-linter contract says so)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from certfleet._exports import LazyExports

if TYPE_CHECKING:
    from certfleet.store._database import Database
    from certfleet.store._inventory_read import read_summaries
    from certfleet.store._repositories import SqlCertificateRepository
    from certfleet.store._sealed_rows import open_secret_box
    from certfleet.store._unit_of_work import SqlUnitOfWork, Store

__all__ = [
    "Database",
    "SqlCertificateRepository",
    "SqlUnitOfWork",
    "Store",
    "open_secret_box",
    "read_summaries",
]

# Imported when first named (PEP 562): a command that only reads the inventory
# (`certfleet inventory list`) loads the database and the certificate repository, not every
# repository (the ACME one pulls josepy) nor Alembic.
_EXPORTS = LazyExports(
    __name__,
    {
        "Database": "certfleet.store._database",
        "SqlCertificateRepository": "certfleet.store._repositories",
        "SqlUnitOfWork": "certfleet.store._unit_of_work",
        "Store": "certfleet.store._unit_of_work",
        "open_secret_box": "certfleet.store._sealed_rows",
        "read_summaries": "certfleet.store._inventory_read",  # inventory list without the ORM
    },
)


def __getattr__(name: str) -> Any:
    return _EXPORTS.get(name)

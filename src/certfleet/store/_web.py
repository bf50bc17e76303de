"""The dashboard's read side, one object over the database: inventory search
(:mod:`._web_inventory`), the overview's aggregates (:mod:`._web_overview`), audit pages
(:mod:`._web_audit`) and a certificate's lineage. Each query runs in its own short read
transaction (on SQLite it never waits for a writer)."""

from __future__ import annotations

from certfleet.inventory import CertificateRecord
from certfleet.store._database import Database
from certfleet.store._lineage import SqlLineageRepository
from certfleet.store._web_audit import AuditQueries
from certfleet.store._web_inventory import InventorySearch
from certfleet.store._web_overview import OverviewQueries

__all__ = ["WebQueries"]


class WebQueries(InventorySearch, OverviewQueries, AuditQueries):
    def __init__(self, database: Database) -> None:
        self._database = database
        self._postgresql = database.dialect == "postgresql"

    def predecessors(self, certificate_id: int, limit: int) -> list[CertificateRecord]:
        """What ``certificate_id`` replaced, oldest first, at most ``limit`` steps back."""
        before: list[CertificateRecord] = []
        with self._database.session(read_only=True) as session:
            lineage = SqlLineageRepository(session)
            current: int | None = certificate_id
            while current is not None and len(before) < limit:
                previous = lineage.predecessor(current)
                found = lineage.certificate(previous) if previous is not None else None
                if found is None:
                    break
                before.insert(0, found)
                current = found.id
        return before

"""Application services: each call is one transaction around the domain core, with its
audit entry written in that same transaction."""

from __future__ import annotations

from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services.audit import AuditService
from certfleet.services.authorities import AuthorityService
from certfleet.services.inventory import ImportOutcome, InventoryService
from certfleet.services.issuance import IssuanceResult, IssuanceService
from certfleet.services.tokens import TokenService

__all__ = [
    "AuditService",
    "AuthorityService",
    "ImportOutcome",
    "InventoryService",
    "IssuanceResult",
    "IssuanceService",
    "TokenService",
    "UnitOfWork",
    "UnitOfWorkFactory",
]

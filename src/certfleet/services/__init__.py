"""Application services: each call is one transaction around the domain core, with its
audit entry written in that same transaction.

The rule of the layers: domain packages (``ca``, ``policy``, ``revocation``, ``inventory``,
``discovery``, ``agents``, ``lifecycle.notifications.events``) own their values and the
storage ports they need; a module here orchestrates one use case (one reason to change),
each call in one unit of work (:class:`UnitOfWork`, a bundle of those ports); ``store``
implements the ports and nothing else, and never imports this package. Edges (``cli``,
``api``, ``web``) parse input, call a service and render its result: no business rule lives
there."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from certfleet._exports import LazyExports

if TYPE_CHECKING:
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

# Imported when first named (PEP 562): importing one service (``services.discovery`` for
# ``certfleet scan``) runs this package's __init__ first, and it must not load every other
# service, their domain packages and the ACME protocol with it (issue 11: a scan's start-up).
_EXPORTS = LazyExports(
    __name__,
    {
        "AuditService": "certfleet.services.audit",
        "AuthorityService": "certfleet.services.authorities",
        "ImportOutcome": "certfleet.services.inventory",
        "InventoryService": "certfleet.services.inventory",
        "IssuanceResult": "certfleet.services.issuance",
        "IssuanceService": "certfleet.services.issuance",
        "TokenService": "certfleet.services.tokens",
        "UnitOfWork": "certfleet.services._ports",
        "UnitOfWorkFactory": "certfleet.services._ports",
    },
)


def __getattr__(name: str) -> Any:
    return _EXPORTS.get(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

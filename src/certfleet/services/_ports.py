"""The transactions the application services open: a unit of work groups the ports of the
domain packages (each package owns its port; ``certfleet.store`` implements them all)."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

# The domain packages' ports are named in annotations only (strings at run time): a service
# that needs a few of them (discovery, for ``certfleet scan``) does not import every domain
# package by importing this module (issue 11: the scan CLI's start-up).
if TYPE_CHECKING:
    from certfleet.access import TokenRepository
    from certfleet.agents import AgentRepository
    from certfleet.audit import AuditRepository
    from certfleet.ca import CaRepository
    from certfleet.discovery.anchors import TrustAnchorRepository
    from certfleet.discovery.records import FindingRepository, LocationRepository, ScanRunRepository
    from certfleet.inventory import CertificateRecord, CertificateRepository, SerialRepository
    from certfleet.lifecycle.notifications.events import ChannelRepository, OutboxRepository
    from certfleet.lifecycle.repositories import LifecycleRepositories
    from certfleet.policy import PolicyRepository
    from certfleet.revocation import BlockedKeyRepository, RevocationRepository
    from certfleet.services._agent_ports import AgentUnitOfWork, AgentUnitOfWorkFactory

__all__ = [
    "AgentUnitOfWork",
    "AgentUnitOfWorkFactory",
    "CertificateRevoker",
    "IdentityInUse",
    "RenewalWindowOf",
    "UnitOfWork",
    "UnitOfWorkFactory",
]


class UnitOfWork(Protocol):
    """Repositories sharing one transaction."""

    @property
    def certificates(self) -> CertificateRepository: ...

    @property
    def serials(self) -> SerialRepository: ...

    @property
    def cas(self) -> CaRepository: ...

    @property
    def tokens(self) -> TokenRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def revocations(self) -> RevocationRepository: ...

    @property
    def blocked_keys(self) -> BlockedKeyRepository: ...

    @property
    def scans(self) -> ScanRunRepository: ...

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def findings(self) -> FindingRepository: ...

    @property
    def trust_anchors(self) -> TrustAnchorRepository: ...

    @property
    def policies(self) -> PolicyRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def notify_channels(self) -> ChannelRepository: ...

    @property
    def lifecycle(self) -> LifecycleRepositories: ...

    @property
    def agents(self) -> AgentRepository: ...  # a campaign reads its holders' deployment reports


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> AbstractContextManager[UnitOfWork]:
        """Open a transaction: committed if the block ends normally, else rolled back.
        ``read_only`` promises the block only reads (SQLite then takes no write lock)."""
        ...


# The agents' unit of work extends notifications' (a protocol class, so its base is needed
# at run time): defined beside the agent services' other ports and loaded when first named.
_LAZY = {"AgentUnitOfWork", "AgentUnitOfWorkFactory"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("certfleet.services._agent_ports"), name)


RenewalWindowOf: TypeAlias = Callable[["CertificateRecord"], tuple[dt.datetime, dt.datetime]]
CertificateRevoker: TypeAlias = Callable[[str, str], object]  # (serial, actor)
IdentityInUse: TypeAlias = Callable[[int, str], bool]  # (identity's certificate id, agent): ask again later?

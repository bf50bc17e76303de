"""The transactions the application services open: a unit of work groups the ports of the
domain packages (each package owns its port; ``certfleet.store`` implements them all)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from certfleet.access import TokenRepository
from certfleet.agents import AgentRepository
from certfleet.audit import AuditRepository
from certfleet.ca import CaRepository
from certfleet.discovery.anchors import TrustAnchorRepository
from certfleet.discovery.records import FindingRepository, LocationRepository, ScanRunRepository
from certfleet.inventory import CertificateRecord, CertificateRepository, SerialRepository
from certfleet.lifecycle.notifications.events import NotifyUnitOfWork
from certfleet.lifecycle.repositories import LifecycleRepositories
from certfleet.policy import PolicyRepository
from certfleet.revocation import BlockedKeyRepository, RevocationRepository

if TYPE_CHECKING:
    from certfleet.lifecycle.notifications.events import ChannelRepository, OutboxRepository

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


class AgentUnitOfWork(NotifyUnitOfWork, Protocol):
    """The repositories the agent services use, in one transaction (notifications' view,
    whose outbox takes the failure events, plus the agents)."""

    @property
    def agents(self) -> AgentRepository: ...

    @property
    def lifecycle(self) -> LifecycleRepositories: ...  # campaigns waiting for an agent


AgentUnitOfWorkFactory = Callable[[], AbstractContextManager[AgentUnitOfWork]]
RenewalWindowOf = Callable[[CertificateRecord], tuple[dt.datetime, dt.datetime]]
CertificateRevoker = Callable[[str, str], object]  # (serial, actor)
IdentityInUse = Callable[[int, str], bool]  # (identity's certificate id, agent): ask again later?

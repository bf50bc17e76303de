"""The storage the lifecycle needs, as one group on the unit of work (``uow.lifecycle``);
``certfleet.store`` implements it."""

from __future__ import annotations

from typing import Protocol

from certfleet.lifecycle.campaigns import CampaignRepository
from certfleet.lifecycle.jobs import RenewalJobRepository
from certfleet.lifecycle.lineage import LineageRepository

__all__ = ["LifecycleRepositories"]


class LifecycleRepositories(Protocol):
    @property
    def jobs(self) -> RenewalJobRepository: ...

    @property
    def lineage(self) -> LineageRepository: ...

    @property
    def campaigns(self) -> CampaignRepository: ...

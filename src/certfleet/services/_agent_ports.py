"""The agent services' unit of work: notifications' view (whose outbox takes the failure
events) plus the agents. Apart from :mod:`._ports` because its base protocol is needed at
run time and imports the notifications package (channels, HTTP client): only the agent
services load it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, TypeAlias

from certfleet.lifecycle.notifications.events import NotifyUnitOfWork

if TYPE_CHECKING:
    from certfleet.agents import AgentRepository
    from certfleet.lifecycle.repositories import LifecycleRepositories

__all__ = ["AgentUnitOfWork", "AgentUnitOfWorkFactory"]


class AgentUnitOfWork(NotifyUnitOfWork, Protocol):
    """The repositories the agent services use, in one transaction (notifications' view,
    whose outbox takes the failure events, plus the agents)."""

    @property
    def agents(self) -> AgentRepository: ...

    @property
    def lifecycle(self) -> LifecycleRepositories: ...  # campaigns waiting for an agent


AgentUnitOfWorkFactory: TypeAlias = Callable[[], AbstractContextManager[AgentUnitOfWork]]

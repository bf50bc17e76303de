"""Errors of the agent's Workload API.

::

    CertfleetError
    └── AgentError
        └── WorkloadError
            ├── AttestationFailed     the caller's process could not be identified (gone,
            │                         reused pid, unreadable executable)
            └── NoIdentity            no SVID for the caller yet (none issued, or all expired)
"""

from __future__ import annotations

from certfleet.agent.errors import AgentError

__all__ = ["AttestationFailed", "NoIdentity", "WorkloadError"]


class WorkloadError(AgentError):
    pass


class AttestationFailed(WorkloadError):
    pass


class NoIdentity(WorkloadError):
    pass

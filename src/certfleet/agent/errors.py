"""Errors of the host agent.

::

    CertfleetError
    ├── InvalidInput
    │   ├── AgentConfigError        the agent's YAML configuration is unusable
    │   └── UnsafeTarget            a target path is outside the allowed directories, or a
    │                               symlink that points elsewhere
    ├── Conflict
    │   └── DeploymentBusy          another agent process is deploying this certificate
    └── AgentError                  a step of a run failed (a failure is data: one per certificate)
        ├── NotEnrolled             no identity yet: run ``certfleet agent enroll``
        ├── ServerUnreachable       the certfleet server did not answer
        ├── UntrustedServer         the server (or its CA bundle) does not verify against the
        │                           pinned root and its server-identity CA: nothing was sent
        ├── WriteFailed             new files could not be written; the old ones are untouched
        ├── ReloadFailed            the reload command failed or timed out
        ├── HealthCheckFailed       the endpoint did not present the expected certificate
        └── AcmeFailed              the external ACME CA refused or failed the order
"""

from __future__ import annotations

from certfleet.errors import CertfleetError, Conflict, InvalidInput

__all__ = [
    "AcmeFailed",
    "AgentConfigError",
    "AgentError",
    "DeploymentBusy",
    "HealthCheckFailed",
    "NotEnrolled",
    "ReloadFailed",
    "ServerUnreachable",
    "UnsafeTarget",
    "UntrustedServer",
    "WriteFailed",
]


class AgentConfigError(InvalidInput):
    pass


class UnsafeTarget(InvalidInput):
    pass


class DeploymentBusy(Conflict):
    pass


class AgentError(CertfleetError):
    title = "Agent error"


class NotEnrolled(AgentError):
    pass


class ServerUnreachable(AgentError):
    pass


class UntrustedServer(AgentError):
    pass


class WriteFailed(AgentError):
    pass


class ReloadFailed(AgentError):
    pass


class HealthCheckFailed(AgentError):
    pass


class AcmeFailed(AgentError):
    pass

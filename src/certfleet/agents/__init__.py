"""What the server knows about host agents: join tokens, agents, their mTLS identities, the
certificates they manage and their deployment reports, plus the storage port
(:class:`AgentRepository`) the server's agent services need.

The rule of the layers: this domain package owns its values and its port; the application
services in ``certfleet.services`` orchestrate one use case per module in one transaction;
``certfleet.store`` implements the port and nothing else. It is the server's side:
``certfleet.agent`` (the host agent process) never imports it and talks to the server only
over HTTPS.
"""

from __future__ import annotations

from certfleet.agents._records import (
    Agent,
    AgentIdentity,
    AgentRepository,
    AgentStatus,
    Deployment,
    DeploymentStatus,
    JoinToken,
    ManagedCertificate,
    check_agent_name,
    check_certificate_name,
)

__all__ = [
    "Agent",
    "AgentIdentity",
    "AgentRepository",
    "AgentStatus",
    "Deployment",
    "DeploymentStatus",
    "JoinToken",
    "ManagedCertificate",
    "check_agent_name",
    "check_certificate_name",
]

"""Host agents: one-time join tokens, enrolment to an mTLS identity, issuance within the
agent's name policy, deployment reports (which become certificate locations), renewal
instructions, and revocation.

Enrolment needs no shared secret on the host ("secret zero"): an operator creates a join
token for one host; the agent presents it once with a CSR for a key it generated itself and
receives a client certificate. From then on it authenticates with that certificate only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from certfleet.agents import Agent, AgentStatus, Deployment, DeploymentStatus
from certfleet.ca import CaCertificate
from certfleet.clock import Clock
from certfleet.services._agent_admin import MAX_TOKEN_TTL, AgentAdmin, MintedJoinToken
from certfleet.services._agent_deployments import DeploymentReports
from certfleet.services._agent_enrolment import IDENTITY_VALIDITY_DAYS, AgentEnrolment, Enrolment
from certfleet.services._agent_issuance import AgentIssuance, AgentIssue
from certfleet.services._agent_reports import DeploymentReport, Instruction, default_renewal_window
from certfleet.services._ports import (
    AgentUnitOfWorkFactory,
    CertificateRevoker,
    IdentityInUse,
    RenewalWindowOf,
)
from certfleet.services.issuance import IssuanceService

__all__ = [
    "IDENTITY_VALIDITY_DAYS",
    "MAX_TOKEN_TTL",
    "Agent",
    "AgentIssue",
    "AgentService",
    "AgentStatus",
    "Deployment",
    "DeploymentReport",
    "DeploymentStatus",
    "Enrolment",
    "Instruction",
    "MintedJoinToken",
]


class AgentService:
    """The agent use cases behind one name for the API: each lives in its own module
    (:class:`AgentAdmin`, :class:`AgentEnrolment`, :class:`AgentIssuance`,
    :class:`DeploymentReports`) and runs in its own transactions."""

    def __init__(
        self,
        uow: AgentUnitOfWorkFactory,
        issuance: IssuanceService,
        hierarchy: Callable[[], Sequence[CaCertificate]],
        clock: Clock,
        *,
        renewal_window: RenewalWindowOf = default_renewal_window,
        revoke_certificate: CertificateRevoker | None = None,
        identity_in_use: IdentityInUse | None = None,
    ) -> None:
        admin = AgentAdmin(uow, clock, revoke_certificate)
        enrolment = AgentEnrolment(uow, issuance, clock, identity_in_use)
        issuing = AgentIssuance(uow, issuance, hierarchy, clock, renewal_window)
        # operator
        self.create_join_token = admin.create_join_token
        self.list_agents = admin.list_agents
        self.revoke = admin.revoke
        self.deployments = admin.deployments
        # enrolment and authentication
        self.enroll = enrolment.enroll
        self.authenticate = enrolment.authenticate
        self.renew_identity = enrolment.renew_identity
        # certificates the agent manages
        self.issue = issuing.issue
        self.instructions = issuing.instructions
        self.identity_instruction = issuing.identity_instruction
        self.report = DeploymentReports(uow, clock).report

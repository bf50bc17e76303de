"""Enrolment needs no shared secret on the host ("secret zero"): an operator creates a join
token for one host; the agent presents it once with a CSR for a key it generated itself and
receives a short-lived mTLS client certificate, its identity. From then on it authenticates
with that certificate only, and renews it with a new key before it ends."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from certfleet.access import hash_secret
from certfleet.agents import (
    Agent,
    AgentIdentity,
    AgentStatus,
)
from certfleet.audit import AuditLog, CertificateRef
from certfleet.ca import IssuanceRequest, IssuedCertificate
from certfleet.clock import Clock
from certfleet.errors import Forbidden, Unauthenticated
from certfleet.inventory import Status
from certfleet.services._agent_admin import split_join_token
from certfleet.services._ports import (
    AgentUnitOfWork,
    AgentUnitOfWorkFactory,
    IdentityInUse,
)
from certfleet.services.issuance import IssuanceService
from certfleet.x509 import (
    CertificateFacts,
    csr_public_key,
    load_csr,
)

__all__ = ["IDENTITY_VALIDITY_DAYS", "AgentEnrolment", "Enrolment"]

# A short-lived identity limits what a stolen agent key is worth; the agent renews it in the
# last third of its life, so a host may be down ten days without having to re-enrol.
IDENTITY_VALIDITY_DAYS = 30
_TOUCH_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Enrolment:
    agent: Agent
    issued: IssuedCertificate


class AgentEnrolment:
    def __init__(
        self,
        uow: AgentUnitOfWorkFactory,
        issuance: IssuanceService,
        clock: Clock,
        identity_in_use: IdentityInUse | None,
    ) -> None:
        self._uow = uow
        self._issuance = issuance
        self._clock = clock
        self._identity_in_use = identity_in_use
        self._in_use: set[str] = set()  # identities already reported in use

    def enroll(self, token: str, csr_pem: bytes) -> Enrolment:
        """Consume ``token`` and certify the agent's own key. The CSR is checked before the
        token is spent; its names are ignored: the token decides who the agent is."""
        token_id, secret = split_join_token(token)
        public_key = csr_public_key(load_csr(csr_pem))
        now = self._clock.now()
        try:
            with self._uow() as uow:
                record = uow.agents.get_join_token(token_id)
                if record is None or not hmac.compare_digest(record.secret_hash, hash_secret(secret)):
                    raise Unauthenticated("invalid join token")
                if record.used_at is not None:
                    raise Unauthenticated("this join token was already used")
                if record.expires_at <= now:
                    raise Unauthenticated("this join token has expired")
                if not uow.agents.consume_join_token(token_id, now):
                    raise Unauthenticated("this join token was already used")
        except Unauthenticated as exc:
            with self._uow() as uow:
                AuditLog(uow.audit, self._clock).record(
                    "anonymous", "agent.enrol.refused", token_id, {"reason": exc.detail}
                )
            raise
        # The token is spent (committed) before signing: a replay racing with this request
        # already fails at the conditional UPDATE above.
        issued = self._issue_identity(record.host, record.team, public_key, f"agent-token:{token_id}")
        agent = Agent(record.host, record.team, record.allow_names, AgentStatus.ACTIVE, now)
        with self._uow() as uow:
            uow.agents.put_agent(agent)
            self._add_identity(uow, agent.name, issued)
            AuditLog(uow.audit, self._clock).record(
                f"agent-token:{token_id}",
                "agent.enrolled",
                agent.name,
                {
                    "team": agent.team,
                    "identity_serial": format(issued.certificate.serial_number, "x"),
                    "identity_certificate": CertificateRef.of(issued.certificate).subject,
                },
            )
        return Enrolment(agent, issued)

    def _issue_identity(
        self, host: str, team: str | None, public_key: CertificatePublicKeyTypes, actor: str
    ) -> IssuedCertificate:
        request = IssuanceRequest("tls-client", public_key, (host,), host, IDENTITY_VALIDITY_DAYS)
        result = self._issuance.issue_agent_identity(
            request, actor=actor, team=team, tags=("certfleet-agent-identity", f"agent:{host}")
        )
        return result.issued

    def _add_identity(self, uow: AgentUnitOfWork, name: str, issued: IssuedCertificate) -> None:
        facts = CertificateFacts.of(issued.certificate)
        uow.agents.add_identity(
            AgentIdentity(facts.fingerprint_sha256, name, facts.serial, self._clock.now(), facts.not_after)
        )

    def authenticate(self, certificate_der: bytes) -> Agent:
        """The agent a verified TLS client certificate belongs to. The TLS layer has checked
        the chain to our CA and the validity period; this checks it is a current identity
        of an agent that is not revoked."""
        fingerprint = hashlib.sha256(certificate_der).hexdigest()
        now = self._clock.now()
        with self._uow() as uow:
            identity = uow.agents.get_identity(fingerprint)
            if identity is None:
                raise Unauthenticated("this client certificate is not an agent identity")
            agent = uow.agents.get_agent(identity.agent_name)
            if agent is None or agent.status is AgentStatus.REVOKED:
                raise Forbidden(f"agent {identity.agent_name} has been revoked")
            if identity.issued_at < agent.enrolled_at:
                raise Forbidden(f"this identity of {agent.name} was replaced by a re-enrolment")
            record = uow.certificates.get_by_fingerprint(fingerprint)
            if record is None or record.status is Status.REVOKED:
                raise Forbidden(f"the identity certificate of agent {agent.name} has been revoked")
            if identity.not_after <= now:
                raise Unauthenticated(f"the identity certificate of agent {agent.name} has expired")
            if agent.last_seen is None or now - agent.last_seen >= _TOUCH_EVERY:
                uow.agents.touch_agent(agent.name, now)
        report = self._identity_in_use  # a first use: a campaign may revoke what it replaced
        if report is not None and fingerprint not in self._in_use and not report(record.id or 0, agent.name):
            self._in_use = self._in_use if len(self._in_use) < 100_000 else set()
            self._in_use.add(fingerprint)
        return agent

    def renew_identity(self, agent: Agent, csr_pem: bytes) -> IssuedCertificate:
        """A new client certificate for the agent's new key. The current one stays valid to
        its end: an agent that crashed before saving the new one can still ask again."""
        public_key = csr_public_key(load_csr(csr_pem))
        issued = self._issue_identity(agent.name, agent.team, public_key, f"agent:{agent.name}")
        with self._uow() as uow:
            self._add_identity(uow, agent.name, issued)
            AuditLog(uow.audit, self._clock).record(
                f"agent:{agent.name}",
                "agent.identity.renewed",
                agent.name,
                {
                    "identity_serial": format(issued.certificate.serial_number, "x"),
                    "identity_certificate": CertificateRef.of(issued.certificate).subject,
                },
            )
        return issued

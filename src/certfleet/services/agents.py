"""Host agents: one-time join tokens, enrolment to an mTLS identity, issuance within the
agent's name policy, deployment reports (which become certificate locations), renewal
instructions, and revocation.

Enrolment needs no shared secret on the host ("secret zero"): an operator creates a join
token for one host; the agent presents it once with a CSR for a key it generated itself and
receives a client certificate. From then on it authenticates with that certificate only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from certfleet.access import NamePattern, hash_secret
from certfleet.agents import (
    Agent,
    AgentIdentity,
    AgentStatus,
    Deployment,
    DeploymentStatus,
    JoinToken,
    ManagedCertificate,
    check_agent_name,
    check_certificate_name,
)
from certfleet.audit import AuditLog, CertificateRef
from certfleet.ca import CaCertificate, IssuanceRequest, IssuedCertificate
from certfleet.clock import Clock
from certfleet.errors import CertfleetError, Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from certfleet.inventory import CertificateRecord, Source, Status
from certfleet.lifecycle.notifications.events import EventKind, certificate_event, emit
from certfleet.services._agent_reports import (
    DeploymentReport,
    Instruction,
    check_endpoint,
    check_files,
    default_renewal_window,
    deployment_of,
    failure,
    record_locations,
    renewal_instruction,
    spki_sha256,
)
from certfleet.services._ports import AgentUnitOfWork
from certfleet.services.issuance import IssuanceService
from certfleet.x509 import (
    CertificateFacts,
    csr_public_key,
    load_certificates,
    load_csr,
    names_from_csr,
    parse_names,
)

__all__ = [
    "IDENTITY_VALIDITY_DAYS",
    "Agent",
    "AgentService",
    "AgentStatus",
    "Deployment",
    "DeploymentReport",
    "DeploymentStatus",
    "Enrolment",
    "Instruction",
    "MintedJoinToken",
]

_TOKEN_PREFIX = "cfj"  # noqa: S105 - a prefix, not a secret
MAX_TOKEN_TTL = dt.timedelta(days=7)
# A short-lived identity limits what a stolen agent key is worth; the agent renews it in the
# last third of its life, so a host may be down ten days without having to re-enrol.
IDENTITY_VALIDITY_DAYS = 30
_TOUCH_EVERY = dt.timedelta(minutes=1)

AgentUnitOfWorkFactory = Callable[[], AbstractContextManager[AgentUnitOfWork]]
RenewalWindowOf = Callable[[CertificateRecord], tuple[dt.datetime, dt.datetime]]
CertificateRevoker = Callable[[str, str], object]
IdentityInUse = Callable[[int, str], bool]  # (identity's certificate id, agent): ask again later?


@dataclass(frozen=True)
class MintedJoinToken:
    token: str  # shown once; only the SHA-256 of its secret is stored
    record: JoinToken


@dataclass(frozen=True)
class Enrolment:
    agent: Agent
    issued: IssuedCertificate


@dataclass(frozen=True)
class AgentIssue:
    """A certificate for an agent. ``reused`` when a retried request for the same key got
    the certificate already issued for it rather than a second one."""

    issued: IssuedCertificate
    record: CertificateRecord
    reused: bool


def _split_token(token: str) -> tuple[str, str]:
    prefix, _, rest = token.strip().partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != _TOKEN_PREFIX or not token_id or not secret:
        raise Unauthenticated("malformed join token: expected cfj_<id>_<secret>")
    return token_id, secret


class AgentService:
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
        self._uow = uow
        self._issuance = issuance
        self._hierarchy = hierarchy
        self._clock = clock
        self._window = renewal_window
        self._revoke_certificate = revoke_certificate
        self._identity_in_use = identity_in_use
        self._in_use: set[str] = set()  # identities already reported in use

    # -- operator -------------------------------------------------------------------------

    def create_join_token(
        self,
        host: str,
        *,
        team: str | None,
        ttl: dt.timedelta,
        allow_names: Sequence[str] = (),
        actor: str,
    ) -> MintedJoinToken:
        """A one-time token for ``host``. The agent may later be issued only names matching
        ``allow_names`` (default: the host name itself)."""
        name = check_agent_name(host)
        if not dt.timedelta(seconds=1) <= ttl <= MAX_TOKEN_TTL:
            raise InvalidInput("a join token's TTL must be between 1 second and 7 days")
        team = team.strip() if team else None
        patterns = tuple(NamePattern.parse(p) for p in allow_names) or (NamePattern.parse(name),)
        now = self._clock.now()
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = JoinToken(token_id, name, team, patterns, hash_secret(secret), actor, now, now + ttl)
        with self._uow() as uow:
            uow.agents.add_join_token(record)
            AuditLog(uow.audit, self._clock).record(
                actor,
                "agent.token.created",
                token_id,
                {
                    "host": name,
                    "team": team,
                    "allow_names": [p.text for p in patterns],
                    "expires_at": record.expires_at.isoformat(),
                },
            )
        return MintedJoinToken(f"{_TOKEN_PREFIX}_{token_id}_{secret}", record)

    def list_agents(self) -> Sequence[Agent]:
        with self._uow() as uow:
            return list(uow.agents.list_agents())

    def revoke(self, name: str, *, actor: str, reason: str = "privilegeWithdrawn") -> Agent:
        """Refuse the agent from now on, and revoke its identity certificates so they also
        fail CRL and OCSP checks elsewhere."""
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.agents.revoke_agent(name, now):
                if uow.agents.get_agent(name) is None:
                    raise NotFound(f"no agent {name!r}")
                raise Conflict(f"agent {name!r} is already revoked")
            identities = uow.agents.identities_of(name)
            AuditLog(uow.audit, self._clock).record(actor, "agent.revoked", name, {"reason": reason})
            agent = uow.agents.get_agent(name)
        assert agent is not None
        if self._revoke_certificate is not None:
            for identity in identities:
                if identity.not_after > now:
                    try:
                        self._revoke_certificate(identity.serial, actor)
                    except CertfleetError:
                        continue  # already revoked: the agent is refused by its status anyway
        return agent

    def deployments(self, agent_name: str | None = None, *, latest: bool = True) -> Sequence[Deployment]:
        with self._uow() as uow:
            if latest:
                return list(uow.agents.latest_deployments(agent_name))
            return list(uow.agents.deployments(agent_name, 1000))

    # -- enrolment and authentication -----------------------------------------------------

    def enroll(self, token: str, csr_pem: bytes) -> Enrolment:
        """Consume ``token`` and certify the agent's own key. The CSR is checked before the
        token is spent; its names are ignored: the token decides who the agent is."""
        token_id, secret = _split_token(token)
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
        result = self._issuance.issue(
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

    # -- certificates the agent manages ---------------------------------------------------

    def issue(
        self, agent: Agent, name: str, csr_pem: bytes, *, profile: str, validity_days: int | None = None
    ) -> AgentIssue:
        """Issue for a CSR of a key the agent holds, within the agent's name policy. A
        retry with the same key and names returns the certificate already issued."""
        name = check_certificate_name(name)
        csr = load_csr(csr_pem)
        public_key = csr_public_key(csr)
        common_name, names = names_from_csr(csr)
        normalized = tuple(n.value for n in parse_names(names or ([common_name] if common_name else [])))
        spki = spki_sha256(public_key)
        with self._uow() as uow:
            managed = uow.agents.get_managed(agent.name, name)
            if managed is not None and (managed.spki_sha256, managed.names, managed.profile) == (
                spki,
                normalized,
                profile,
            ):
                record = uow.certificates.get_by_fingerprint(managed.fingerprint_sha256)
                if record is not None and record.effective_status(self._clock.now()) is Status.ACTIVE:
                    return AgentIssue(self._reissued(record), record, reused=True)
        request = IssuanceRequest(profile, public_key, normalized, common_name, validity_days)
        result = self._issuance.issue(
            request,
            actor=f"agent:{agent.name}",
            team=agent.team,
            principal=agent.principal(),
            tags=(f"agent:{agent.name}",),
        )
        with self._uow() as uow:
            uow.agents.put_managed(
                ManagedCertificate(
                    agent.name,
                    name,
                    profile,
                    normalized,
                    spki,
                    result.record.fingerprint_sha256,
                    self._clock.now(),
                )
            )
        return AgentIssue(result.issued, result.record, reused=False)

    def _reissued(self, record: CertificateRecord) -> IssuedCertificate:
        by_id = {ca.id: ca for ca in self._hierarchy()}
        chain: list[x509.Certificate] = []
        ca = by_id.get(record.issuer_ca_id or "")
        while ca is not None and ca.role != "root":
            chain.append(ca.certificate)
            ca = by_id.get(ca.parent_id or "")
        return IssuedCertificate(
            record.certificate(), tuple(chain), record.issuer_ca_id or "", record.profile or ""
        )

    def report(self, agent: Agent, report: DeploymentReport) -> Deployment:
        """Record a deployment. A certificate the inventory does not know yet (one from an
        external ACME CA) is imported, if its names are within the agent's policy. A
        successful deployment records each file and the endpoint as certificate locations."""
        name = check_certificate_name(report.name)
        files = check_files(report.files)
        endpoint = check_endpoint(report.endpoint)
        if report.issuer not in ("certfleet", "acme"):
            raise InvalidInput("issuer must be certfleet or acme")
        leaf = load_certificates(report.certificate_pem, source="certificate_pem")[0]
        facts = CertificateFacts.of(leaf)
        now = self._clock.now()
        with self._uow() as uow:
            log = AuditLog(uow.audit, self._clock)
            record = uow.certificates.get_by_fingerprint(facts.fingerprint_sha256)
            if record is None:
                names = facts.sans or ((facts.common_name,) if facts.common_name else ())
                if not names:
                    raise InvalidInput("the certificate names no host (no SAN, no CN)")
                agent.principal().authorize_names(parse_names(names))
                record = uow.certificates.add(
                    CertificateRecord.from_facts(
                        facts,
                        source=Source.IMPORTED,
                        seen_at=now,
                        team=agent.team,
                        tags=(f"agent:{agent.name}", report.issuer),
                    )
                )
                log.record(
                    f"agent:{agent.name}",
                    "certificate.imported",
                    CertificateRef(facts.serial, facts.issuer).subject,
                    {"fingerprint_sha256": facts.fingerprint_sha256, "source": f"agent:{agent.name}"},
                )
            elif record.team != agent.team and f"agent:{agent.name}" not in record.tags:
                raise Forbidden("this certificate belongs to another team")
            assert record.id is not None
            checked = DeploymentReport(name, report.status, b"", files, endpoint, report.sni, report.issuer)
            deployment = uow.agents.add_deployment(
                deployment_of(agent.name, record.id, facts, replace(checked, detail=report.detail), now)
            )
            if report.status is DeploymentStatus.DEPLOYED:
                uow.certificates.touch(record.id, now)
                record_locations(uow.locations, record.id, leaf, deployment, now)
            log.record(
                f"agent:{agent.name}",
                f"agent.deployment.{report.status.value}",
                CertificateRef(facts.serial, facts.issuer).subject,
                {
                    "name": name,
                    "files": sorted(files.values()),
                    "endpoint": endpoint,
                    "detail": report.detail,
                },
            )
            if report.status is not DeploymentStatus.DEPLOYED:
                # In the same transaction as the report: the failure is announced exactly once.
                emit(
                    uow, certificate_event(uow, EventKind.RENEWAL_FAILED, record, now, **failure(deployment))
                )
        return deployment

    def instructions(self, agent: Agent) -> list[Instruction]:
        """For each certificate the agent manages or last deployed: when to renew it."""
        with self._uow() as uow:
            fingerprints = {m.name: m.fingerprint_sha256 for m in uow.agents.managed_of(agent.name)}
            for deployment in uow.agents.latest_deployments(agent.name):
                if deployment.status is DeploymentStatus.DEPLOYED:
                    fingerprints[deployment.name] = deployment.fingerprint_sha256
            records = {n: uow.certificates.get_by_fingerprint(fp) for n, fp in fingerprints.items()}
        now = self._clock.now()
        return [renewal_instruction(n, r, self._window, now) for n, r in sorted(records.items()) if r]

    def identity_instruction(self, certificate_der: bytes) -> Instruction | None:
        """When to renew the identity the agent presented (a campaign moves its window into
        the past after a CA compromise: renew now, RFC 9773 section 4.2)."""
        with self._uow() as uow:
            record = uow.certificates.get_by_fingerprint(hashlib.sha256(certificate_der).hexdigest())
        return renewal_instruction("identity", record, self._window, self._clock.now()) if record else None

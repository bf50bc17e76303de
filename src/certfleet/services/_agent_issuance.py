"""Certificates for the keys an agent holds, within the agent's name policy (a retry gets
the certificate already issued), and the renewal instructions of what it manages."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from cryptography import x509

from certfleet.agents import (
    Agent,
    DeploymentStatus,
    ManagedCertificate,
    check_certificate_name,
)
from certfleet.ca import CaCertificate, IssuanceRequest, IssuedCertificate
from certfleet.clock import Clock
from certfleet.inventory import CertificateRecord, Status
from certfleet.services._agent_reports import (
    Instruction,
    renewal_instruction,
)
from certfleet.services._ports import (
    AgentUnitOfWork,
    AgentUnitOfWorkFactory,
    RenewalWindowOf,
)
from certfleet.services.issuance import IssuanceService
from certfleet.x509 import (
    csr_public_key,
    load_csr,
    names_from_csr,
    parse_names,
    spki_sha256,
)

__all__ = ["AgentIssuance", "AgentIssue"]


@dataclass(frozen=True)
class AgentIssue:
    """A certificate for an agent. ``reused`` when a retried request for the same key got
    the certificate already issued for it rather than a second one."""

    issued: IssuedCertificate
    record: CertificateRecord
    reused: bool


class AgentIssuance:
    def __init__(
        self,
        uow: AgentUnitOfWorkFactory,
        issuance: IssuanceService,
        hierarchy: Callable[[], Sequence[CaCertificate]],
        clock: Clock,
        renewal_window: RenewalWindowOf,
    ) -> None:
        self._uow = uow
        self._issuance = issuance
        self._hierarchy = hierarchy
        self._clock = clock
        self._window = renewal_window

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

    def instructions(self, agent: Agent) -> list[Instruction]:
        """For each certificate the agent manages or last deployed: when to renew it."""
        with self._uow() as uow:
            fingerprints = {m.name: m.fingerprint_sha256 for m in uow.agents.managed_of(agent.name)}
            for deployment in uow.agents.latest_deployments(agent.name):
                if deployment.status is DeploymentStatus.DEPLOYED:
                    fingerprints[deployment.name] = deployment.fingerprint_sha256
            records = {n: uow.certificates.get_by_fingerprint(fp) for n, fp in fingerprints.items()}
            moving = self._campaign_targets(uow, agent.name)
        now = self._clock.now()
        found = [renewal_instruction(n, r, self._window, now) for n, r in sorted(records.items()) if r]
        by_serial = {r.serial: r.id for r in records.values() if r is not None}
        return [
            replace(i, profile=target[0], key_type=target[1])
            if (target := moving.get(by_serial.get(i.serial) or 0))
            else i
            for i in found
        ]

    @staticmethod
    def _campaign_targets(uow: AgentUnitOfWork, agent_name: str) -> dict[int, tuple[str, str | None]]:
        """Certificate id -> (profile, key type) an open campaign waits for this agent to
        renew to (``rotate --to-profile``)."""
        targets: dict[int, tuple[str, str | None]] = {}
        campaigns: dict[str, tuple[str | None, str | None]] = {}
        for item in uow.lifecycle.campaigns.awaiting_client(agent_name, 1000):
            if item.campaign_id not in campaigns:
                campaign = uow.lifecycle.campaigns.get(item.campaign_id)
                campaigns[item.campaign_id] = (
                    (campaign.to_profile, campaign.to_key_type) if campaign else (None, None)
                )
            profile, key_type = campaigns[item.campaign_id]
            if profile is not None:
                targets[item.certificate_id] = (profile, key_type)
        return targets

    def identity_instruction(self, certificate_der: bytes) -> Instruction | None:
        """When to renew the identity the agent presented (a campaign moves its window into
        the past after a CA compromise: renew now, RFC 9773 section 4.2)."""
        with self._uow() as uow:
            record = uow.certificates.get_by_fingerprint(hashlib.sha256(certificate_der).hexdigest())
        return renewal_instruction("identity", record, self._window, self._clock.now()) if record else None

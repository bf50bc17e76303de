"""Deployment reports from agents: each becomes certificate locations when it succeeded, an
import when the certificate is new (an external ACME CA's), and a notification when it failed."""

from __future__ import annotations

from dataclasses import replace

from certfleet.agents import (
    Agent,
    Deployment,
    DeploymentStatus,
    check_certificate_name,
)
from certfleet.audit import AuditLog, CertificateRef
from certfleet.clock import Clock
from certfleet.errors import Forbidden, InvalidInput
from certfleet.inventory import CertificateRecord, Source
from certfleet.lifecycle.notifications.events import EventKind, certificate_event, emit
from certfleet.services._agent_reports import (
    DeploymentReport,
    check_endpoint,
    check_files,
    deployment_of,
    failure,
    record_locations,
)
from certfleet.services._ports import (
    AgentUnitOfWorkFactory,
)
from certfleet.x509 import (
    CertificateFacts,
    load_certificates,
    parse_names,
)

__all__ = ["DeploymentReports"]


class DeploymentReports:
    def __init__(self, uow: AgentUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

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

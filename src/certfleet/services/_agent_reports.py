"""What agents report and are told: deployment reports (checked, then recorded as
certificate locations) and renewal instructions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from certfleet.agents import Deployment, DeploymentStatus
from certfleet.discovery.records import LocationKind, LocationRepository, Sighting
from certfleet.errors import InvalidInput
from certfleet.inventory import CertificateRecord, Status
from certfleet.x509 import CertificateFacts, spki_sha256

__all__ = [
    "DeploymentReport",
    "Instruction",
    "check_endpoint",
    "check_files",
    "default_renewal_window",
    "deployment_of",
    "failure",
    "record_locations",
    "renewal_instruction",
]

_TARGET_KINDS = frozenset({"key", "cert", "chain", "fullchain", "combined", "pkcs12", "jks"})
_MAX_PATH = 4096


@dataclass(frozen=True)
class DeploymentReport:
    name: str
    status: DeploymentStatus
    certificate_pem: bytes  # the leaf first; a chain may follow
    files: Mapping[str, str]
    endpoint: str | None = None
    sni: str | None = None
    issuer: str = "certfleet"
    detail: str = ""


@dataclass(frozen=True)
class Instruction:
    """When the server wants one of the agent's certificates renewed: from ``renew_from`` on
    (the ARI window start, moved to the past by an operator's renew-now or a revocation)."""

    name: str
    serial: str
    fingerprint_sha256: str
    status: str
    renew_from: dt.datetime
    renew_by: dt.datetime
    # A rotation campaign moving this certificate to another profile (``--to-profile``,
    # issue 17) asks for the renewal under that profile, with a new key of that type.
    profile: str | None = None
    key_type: str | None = None


def default_renewal_window(record: CertificateRecord) -> tuple[dt.datetime, dt.datetime]:
    """The start of the last third of the lifetime, for a sixth of it (the ARI default)."""
    lifetime = record.not_after - record.not_before
    start = record.not_after - lifetime / 3
    return start, start + lifetime / 6


def renewal_instruction(
    name: str,
    record: CertificateRecord,
    window: Callable[[CertificateRecord], tuple[dt.datetime, dt.datetime]],
    now: dt.datetime,
) -> Instruction:
    """The certificate's ARI window; a revoked certificate's ended an hour ago (renew now)."""
    if record.status is Status.REVOKED:
        start, end = now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)
    else:
        start, end = window(record)
    status = record.effective_status(now).value
    return Instruction(name, record.serial, record.fingerprint_sha256, status, start, end)


def deployment_of(
    agent_name: str, certificate_id: int, facts: CertificateFacts, report: DeploymentReport, now: dt.datetime
) -> Deployment:
    """The deployment to record for a checked report (files and endpoint already checked)."""
    return Deployment(
        agent_name,
        report.name,
        certificate_id,
        facts.fingerprint_sha256,
        facts.serial,
        report.status,
        dict(report.files),
        report.endpoint,
        report.sni,
        report.issuer,
        report.detail[:2000],
        now,
    )


def failure(deployment: Deployment) -> dict[str, Any]:
    """The ``renewal-failed`` event's details and dedup key for a failed deployment."""
    details = {
        "stage": "deployment",
        "host": deployment.agent_name,
        "name": deployment.name,
        "status": deployment.status.value,
        "reason": deployment.detail,
        "files": sorted(deployment.files.values()),
        "endpoint": deployment.endpoint,
    }
    return {"details": details, "dedup_key": f"agent-deployment:{deployment.id}"}


def check_endpoint(raw: str | None) -> str | None:
    if raw is None:
        return None
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or len(raw) > 300:
        raise InvalidInput(f"endpoint {raw[:80]!r} must be HOST:PORT")
    return raw


def check_files(files: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for kind, path in files.items():
        if kind not in _TARGET_KINDS:
            raise InvalidInput(
                f"unknown file kind {kind!r}: expected one of {', '.join(sorted(_TARGET_KINDS))}"
            )
        if not path.startswith("/") or len(path) > _MAX_PATH or "\x00" in path:
            raise InvalidInput(f"file path for {kind} must be absolute (at most {_MAX_PATH} bytes)")
        checked[kind] = path
    return checked


def record_locations(
    locations: LocationRepository,
    certificate_id: int,
    leaf: x509.Certificate,
    deployment: Deployment,
    now: dt.datetime,
) -> None:
    """Each file as ``file://HOST/PATH`` (RFC 8089: the host names whose file system it is)
    and the endpoint as ``HOST:PORT`` with its SNI; the certificate that was there before is
    marked gone from those places."""
    spki = spki_sha256(leaf.public_key())
    scan_id = f"agent:{deployment.id}"[:32]
    host = deployment.agent_name
    places: list[tuple[LocationKind, str, str]] = [
        (LocationKind.FILE, f"file://{host}{path}", "") for path in sorted(set(deployment.files.values()))
    ]
    if deployment.endpoint:
        places.append((LocationKind.ENDPOINT, deployment.endpoint, deployment.sni or ""))
    for kind, location, sni in places:
        for old in locations.present(kind, [(location, sni)]):
            if old.certificate_id != certificate_id:
                locations.mark_gone(old.certificate_id, kind, location, sni, now)
    locations.record(
        [
            Sighting(certificate_id, kind, location, sni, 0, True, spki, now, scan_id)
            for kind, location, sni in places
        ]
    )

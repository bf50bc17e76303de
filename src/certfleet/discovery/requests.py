"""What a scan is asked to do and what it reports: plain values shared by the service,
the CLI and the REST API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509

from certfleet.discovery._lenient import lenient_parsing
from certfleet.discovery._net_options import NetScanOptions
from certfleet.discovery.errors import BadTarget
from certfleet.discovery.findings import Finding
from certfleet.discovery.outcomes import EndpointOutcome, FileOutcome
from certfleet.discovery.records import ScanRun
from certfleet.discovery.targets import Endpoint, expand_endpoints, read_targets
from certfleet.discovery.trust import fingerprint, load_pem_bundle

if TYPE_CHECKING:
    from certfleet.discovery.files import FileScanOptions

__all__ = ["FileScanRequest", "NetScanRequest", "ScanReport", "parse_trust_bundle"]


def parse_trust_bundle(data: bytes, source: str) -> tuple[x509.Certificate, ...]:
    """Extra trust anchors (``--trust``): a PEM bundle with at least one certificate."""
    certs = load_pem_bundle(data)
    if not certs:
        raise BadTarget(f"{source}: no PEM certificate to trust")
    return tuple(certs)


@dataclass(frozen=True)
class NetScanRequest:
    targets: tuple[str, ...]
    ports: tuple[int, ...] = (443,)
    snis: tuple[str, ...] = ()
    options: NetScanOptions = field(default_factory=NetScanOptions)
    expiring_days: int = 30
    trust: tuple[x509.Certificate, ...] = ()
    team: str | None = None

    def endpoints(self) -> list[Endpoint]:
        return expand_endpoints(read_targets(self.targets), self.ports, self.snis)

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "ports": list(self.ports),
            "sni": list(self.snis),
            "timeout_seconds": o.timeout_seconds,
            "concurrency": o.concurrency,
            "per_host": o.per_host,
            "http_checks": o.http_checks,
            "http_port": o.http_port,
            "expiring_days": self.expiring_days,
            "extra_trust_anchors": len(self.trust),
        }


def _default_file_options() -> FileScanOptions:
    # The file scanner (formats, keystores) is imported by file scans only.
    from certfleet.discovery.files import FileScanOptions

    return FileScanOptions()


@dataclass(frozen=True)
class FileScanRequest:
    paths: tuple[str, ...]
    options: FileScanOptions = field(default_factory=_default_file_options)
    expiring_days: int = 30
    trust: tuple[x509.Certificate, ...] = ()
    team: str | None = None
    # Also read the trust stores at their well-known places under ``root`` (a host's ``/``
    # or a mounted image); ``host`` names whose stores they are (default: this host).
    trust_stores: bool = False
    root: str = "/"
    host: str | None = None

    def describe(self) -> dict[str, Any]:
        o = self.options  # the passwords themselves are never stored
        return {
            "max_file_size": o.max_file_size,
            "follow_symlinks": o.follow_symlinks,
            "passwords": len(o.passwords),
            "expiring_days": self.expiring_days,
            "extra_trust_anchors": len(self.trust),
            "trust_stores": self.trust_stores,
        }


@dataclass(frozen=True)
class ScanReport:
    """``stores``: what reading the trust stores met on the walk recorded (file scans)."""

    run: ScanRun
    findings: tuple[Finding, ...]
    endpoints: tuple[EndpointOutcome, ...] = ()
    files: tuple[FileOutcome, ...] = ()
    stores: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        with lenient_parsing():
            return self._to_dict()

    def _to_dict(self) -> dict[str, Any]:
        codes: dict[tuple[str, str], list[str]] = {}
        for f in self.findings:
            codes.setdefault((f.location, f.sni or ""), []).append(f.code.value)
        outcomes: list[dict[str, Any]] = []
        # A fleet presents the same intermediates hundreds of times: each certificate is
        # described once per report (names as RFC 4514 text cost more than the rest).
        described: dict[x509.Certificate, dict[str, Any]] = {}

        def describe(cert: x509.Certificate) -> dict[str, Any]:
            if cert not in described:
                described[cert] = _cert_dict(cert)
            return dict(described[cert])

        for e in self.endpoints:
            obs = e.observation
            outcomes.append(
                {
                    "target": e.location,
                    "sni": e.endpoint.sni,
                    "status": e.status.value,
                    "reason": e.reason,
                    "tls_version": obs.tls_version if obs else None,
                    "cipher": obs.cipher if obs else None,
                    "chain": [describe(c) for c in obs.chain] if obs else [],
                    "findings": sorted(set(codes.get((e.location, e.endpoint.sni or ""), []))),
                }
            )
        for file in self.files:
            outcomes.append(
                {
                    "target": file.path,
                    "status": file.status.value,
                    "reason": file.reason,
                    "format": file.format,
                    "certificates": [describe(c) for c in file.certificates],
                    "private_keys": len(file.keys),
                    "notes": list(file.notes),
                    "findings": sorted(set(codes.get((file.path, ""), []))),
                }
            )
        return {
            "scan": self.run.to_dict(),
            **({"trust_stores": self.stores} if self.stores is not None else {}),
            "outcomes": outcomes,
            "findings": [
                {
                    "code": f.code.value,
                    "severity": f.severity.value,
                    "location": f.location,
                    "sni": f.sni,
                    "fingerprint_sha256": f.fingerprint_sha256,
                    "detail": f.detail,
                }
                for f in self.findings
            ],
        }


def _cert_dict(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "fingerprint_sha256": fingerprint(cert),
        "serial": format(cert.serial_number, "x"),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

"""Discovery: find certificates on networks and disks, and judge each one.

``targets`` parses what to scan; ``probes`` ask one protocol question each, bounded in time
and bytes; ``scanner`` and ``files`` run them over a fleet and return one outcome per target
(a failure is an outcome, never an exception); ``trust`` builds chains and ``findings`` turns
outcomes into findings with stable codes. Nothing here stores anything: the discovery service
records outcomes in the inventory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from certfleet._exports import LazyExports

if TYPE_CHECKING:
    from certfleet.discovery._lenient import lenient_parsing
    from certfleet.discovery._limits import DEFAULT_MAX_FILE_SIZE
    from certfleet.discovery.errors import BadTarget
    from certfleet.discovery.files import FileScanner, FileScanOptions, FileScanResult
    from certfleet.discovery.findings import (
        SEVERITY,
        EvaluationPolicy,
        Finding,
        FindingCode,
        KeyUse,
        Severity,
        endpoint_findings,
        file_findings,
        hostname_matches,
        key_reuse_findings,
    )
    from certfleet.discovery.keystores import MAX_KDF_ITERATIONS
    from certfleet.discovery.observers import NullObserver, ScanObserver
    from certfleet.discovery.outcomes import (
        EndpointOutcome,
        FileOutcome,
        FileStatus,
        FoundKey,
        HstsCheck,
        NetStatus,
        RedirectCheck,
        TlsObservation,
    )
    from certfleet.discovery.scanner import NetScanOptions, NetworkScanner
    from certfleet.discovery.targets import (
        DEFAULT_PORTS,
        Endpoint,
        Target,
        expand_endpoints,
        parse_ports,
        read_targets,
    )
    from certfleet.discovery.trust import (
        CertificatePool,
        ChainAnalyzer,
        ChainVerdict,
        fingerprint,
        is_self_signed,
        load_system_anchors,
        spki_sha256,
    )

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_PORTS",
    "MAX_KDF_ITERATIONS",
    "SEVERITY",
    "BadTarget",
    "CertificatePool",
    "ChainAnalyzer",
    "ChainVerdict",
    "Endpoint",
    "EndpointOutcome",
    "EvaluationPolicy",
    "FileOutcome",
    "FileScanOptions",
    "FileScanResult",
    "FileScanner",
    "FileStatus",
    "Finding",
    "FindingCode",
    "FoundKey",
    "HstsCheck",
    "KeyUse",
    "NetScanOptions",
    "NetStatus",
    "NetworkScanner",
    "NullObserver",
    "RedirectCheck",
    "ScanObserver",
    "Severity",
    "Target",
    "TlsObservation",
    "endpoint_findings",
    "expand_endpoints",
    "file_findings",
    "fingerprint",
    "hostname_matches",
    "is_self_signed",
    "key_reuse_findings",
    "lenient_parsing",
    "load_system_anchors",
    "parse_ports",
    "read_targets",
    "spki_sha256",
]

# Imported when first named (PEP 562): a network scan (``certfleet scan net``) loads the
# scanner, targets, trust and findings, not the file scanner with its formats and keystores
# (issue 11: the scan CLI's start-up).
_EXPORTS = LazyExports(
    __name__,
    {
        "BadTarget": "certfleet.discovery.errors",
        "CertificatePool": "certfleet.discovery.trust",
        "ChainAnalyzer": "certfleet.discovery.trust",
        "ChainVerdict": "certfleet.discovery.trust",
        "DEFAULT_MAX_FILE_SIZE": "certfleet.discovery._limits",
        "DEFAULT_PORTS": "certfleet.discovery.targets",
        "Endpoint": "certfleet.discovery.targets",
        "EndpointOutcome": "certfleet.discovery.outcomes",
        "EvaluationPolicy": "certfleet.discovery.findings",
        "FileOutcome": "certfleet.discovery.outcomes",
        "FileScanOptions": "certfleet.discovery.files",
        "FileScanResult": "certfleet.discovery.files",
        "FileScanner": "certfleet.discovery.files",
        "FileStatus": "certfleet.discovery.outcomes",
        "Finding": "certfleet.discovery.findings",
        "FindingCode": "certfleet.discovery._codes",
        "FoundKey": "certfleet.discovery.outcomes",
        "HstsCheck": "certfleet.discovery.outcomes",
        "KeyUse": "certfleet.discovery.findings",
        "MAX_KDF_ITERATIONS": "certfleet.discovery.keystores",
        "NetScanOptions": "certfleet.discovery._net_options",
        "NetStatus": "certfleet.discovery.outcomes",
        "NetworkScanner": "certfleet.discovery.scanner",
        "NullObserver": "certfleet.discovery.observers",
        "RedirectCheck": "certfleet.discovery.outcomes",
        "SEVERITY": "certfleet.discovery._codes",
        "ScanObserver": "certfleet.discovery.observers",
        "Severity": "certfleet.discovery._codes",
        "Target": "certfleet.discovery.targets",
        "TlsObservation": "certfleet.discovery.outcomes",
        "endpoint_findings": "certfleet.discovery.findings",
        "expand_endpoints": "certfleet.discovery.targets",
        "file_findings": "certfleet.discovery.findings",
        "fingerprint": "certfleet.discovery.trust",
        "hostname_matches": "certfleet.discovery.findings",
        "is_self_signed": "certfleet.discovery.trust",
        "key_reuse_findings": "certfleet.discovery.findings",
        "lenient_parsing": "certfleet.discovery._lenient",
        "load_system_anchors": "certfleet.discovery.trust",
        "parse_ports": "certfleet.discovery.targets",
        "read_targets": "certfleet.discovery.targets",
        "spki_sha256": "certfleet.discovery.trust",
    },
)


def __getattr__(name: str) -> Any:
    return _EXPORTS.get(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Discovery: find certificates on networks and disks, and judge each one.

``targets`` parses what to scan; ``probes`` ask one protocol question each, bounded in time
and bytes; ``scanner`` and ``files`` run them over a fleet and return one outcome per target
(a failure is an outcome, never an exception); ``trust`` builds chains and ``findings`` turns
outcomes into findings with stable codes. Nothing here stores anything: the discovery service
records outcomes in the inventory.
"""

from __future__ import annotations

from certfleet.discovery._lenient import lenient_parsing
from certfleet.discovery.errors import BadTarget
from certfleet.discovery.files import DEFAULT_MAX_FILE_SIZE, FileScanner, FileScanOptions, FileScanResult
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

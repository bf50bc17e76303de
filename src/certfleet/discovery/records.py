"""What the inventory keeps about discovery: scan runs, where each certificate was seen,
and findings; plus the storage interfaces (``certfleet.store`` implements them)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from certfleet.clock import iso
from certfleet.discovery.findings import SEVERITY, FindingCode, Severity

if TYPE_CHECKING:
    from certfleet.inventory import CertificateRecord

__all__ = [
    "CertificateLocation",
    "FindingQuery",
    "FindingRepository",
    "LocationKind",
    "LocationRepository",
    "NewFinding",
    "ScanError",
    "ScanRun",
    "ScanRunRepository",
    "ScanStatus",
    "Sighting",
    "StoredFinding",
]


class LocationKind(enum.StrEnum):
    ENDPOINT = "endpoint"
    FILE = "file"


class ScanStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class ScanRun:
    """One scan: what was asked, when it ran, and what it counted."""

    id: str
    kind: str  # "net" or "files"
    status: ScanStatus
    targets: tuple[str, ...]
    options: dict[str, Any]
    requested_by: str
    created_at: dt.datetime
    team: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    targets_total: int = 0
    succeeded: int = 0
    failed: int = 0
    certificates_found: int = 0
    certificates_new: int = 0
    findings: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status.value,
            "targets": list(self.targets),
            "options": self.options,
            "team": self.team,
            "requested_by": self.requested_by,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "targets_total": self.targets_total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "certificates_found": self.certificates_found,
            "certificates_new": self.certificates_new,
            "findings": self.findings,
            "error": self.error,
        }


@dataclass(frozen=True)
class ScanError:
    """A target that could not be examined, and why."""

    target: str
    status: str
    reason: str
    sni: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "sni": self.sni, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class Sighting:
    """A certificate seen at a location in a scan. ``leaf``: the end-entity certificate of
    an endpoint, or a non-CA certificate in a file (what key reuse compares)."""

    certificate_id: int
    kind: LocationKind
    location: str
    sni: str
    chain_position: int
    leaf: bool
    spki_sha256: str
    seen_at: dt.datetime
    scan_id: str
    tls_version: str | None = None
    cipher: str | None = None


@dataclass(frozen=True)
class CertificateLocation:
    certificate_id: int
    fingerprint_sha256: str
    kind: LocationKind
    location: str
    sni: str
    chain_position: int
    leaf: bool
    spki_sha256: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    gone_at: dt.datetime | None = None
    last_scan_id: str | None = None
    tls_version: str | None = None
    cipher: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "location": self.location,
            "sni": self.sni or None,
            "chain_position": self.chain_position,
            "fingerprint_sha256": self.fingerprint_sha256,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "gone_at": iso(self.gone_at),
            "present": self.gone_at is None,
            "last_scan_id": self.last_scan_id,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
        }


@dataclass(frozen=True)
class NewFinding:
    """A finding as a scan produced it, ready to store."""

    code: FindingCode
    kind: LocationKind
    location: str
    sni: str
    fingerprint_sha256: str
    detail: str
    certificate_id: int | None = None

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.code]


@dataclass(frozen=True)
class StoredFinding:
    id: int
    code: FindingCode
    severity: Severity
    kind: LocationKind
    location: str
    sni: str
    fingerprint_sha256: str
    detail: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    last_scan_id: str
    team: str | None = None
    serial: str | None = None
    resolved_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code.value,
            "severity": self.severity.value,
            "kind": self.kind.value,
            "location": self.location,
            "sni": self.sni or None,
            "serial": self.serial,
            "fingerprint_sha256": self.fingerprint_sha256 or None,
            "detail": self.detail,
            "team": self.team,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "resolved_at": iso(self.resolved_at),
            "last_scan_id": self.last_scan_id,
        }


@dataclass(frozen=True)
class FindingQuery:
    """``severity`` keeps findings at or above it; ``team`` narrows to one team;
    ``include_resolved`` adds findings no longer observed."""

    severity: Severity | None = None
    code: FindingCode | None = None
    team: str | None = None
    include_resolved: bool = False
    limit: int | None = None
    after_id: int | None = None
    scan_id: str | None = None


class ScanRunRepository(Protocol):
    def add(self, run: ScanRun) -> None: ...

    def update(self, run: ScanRun) -> None: ...

    def get(self, run_id: str) -> ScanRun | None: ...

    def add_errors(self, run_id: str, errors: Sequence[ScanError]) -> None: ...

    def errors(self, run_id: str, limit: int) -> Sequence[ScanError]: ...


class LocationRepository(Protocol):
    """Where certificates were seen, and the inventory rows a scan writes for them: a scan
    records hundreds of certificates at once, so these calls take them all together."""

    def known_certificates(self, fingerprints: Sequence[str], seen_at: dt.datetime) -> dict[str, int]:
        """fingerprint -> id of those already in the inventory, their last-seen moved to
        ``seen_at`` (each keeps its source)."""
        ...

    def add_certificates(self, records: Sequence[CertificateRecord]) -> tuple[dict[str, int], set[str]]:
        """Add certificates new to the inventory (distinct fingerprints). Returns fingerprint ->
        id for all of them and the fingerprints this call added (one another transaction added
        meanwhile is treated as known)."""
        ...

    def record(self, sightings: Sequence[Sighting]) -> None:
        """Insert new sightings; for known ones update last_seen and clear gone_at."""
        ...

    def present(
        self, kind: LocationKind, locations: Sequence[tuple[str, str]]
    ) -> Sequence[CertificateLocation]:
        """Locations still present (not gone) at these ``(location, sni)`` pairs."""
        ...

    def present_under(self, roots: Sequence[str]) -> Sequence[CertificateLocation]:
        """File locations still present at or below these paths."""
        ...

    def mark_gone(
        self, certificate_id: int, kind: LocationKind, location: str, sni: str, at: dt.datetime
    ) -> None: ...

    def mark_all_gone(self, locations: Sequence[CertificateLocation], at: dt.datetime) -> None:
        """:meth:`mark_gone` for each of ``locations`` (a renewal day replaces a whole fleet)."""
        ...

    def mark_gone_unless_seen(
        self, kind: LocationKind, locations: Sequence[tuple[str, str]], scan_id: str, at: dt.datetime
    ) -> None:
        """Mark gone every location present at these ``(location, sni)`` pairs that scan
        ``scan_id`` did not :meth:`record` (call it after recording the scan's sightings)."""
        ...

    def for_certificate(self, certificate_id: int) -> Sequence[CertificateLocation]: ...

    def for_certificates(self, certificate_ids: Sequence[int]) -> dict[int, list[CertificateLocation]]:
        """Every location of each certificate, ordered as :meth:`for_certificate` orders them."""
        ...

    def leaves_sharing_keys(self, spkis: Sequence[str]) -> Sequence[CertificateLocation]:
        """Present end-entity locations whose certificate has one of these public keys, for
        the keys present at more than one such location (a key at one is not reused)."""
        ...

    def known_intermediates(self, limit: int) -> Sequence[bytes]:
        """DER of CA certificates seen in chains and files (a pool for chain building)."""
        ...


class FindingRepository(Protocol):
    def sync(
        self,
        scopes: set[tuple[str, str]],
        findings: Sequence[NewFinding],
        *,
        at: dt.datetime,
        scan_id: str,
        team: str | None,
    ) -> tuple[int, int]:
        """Open or refresh ``findings``; resolve open findings at the ``(location, sni)``
        ``scopes`` that were not raised again. Returns (open now in scope, resolved)."""
        ...

    def open_under(self, roots: Sequence[str]) -> set[tuple[str, str]]:
        """(location, sni) of open file findings at or below these paths."""
        ...

    def query(self, query: FindingQuery) -> Sequence[StoredFinding]: ...

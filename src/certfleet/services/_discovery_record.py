"""Recording a judged scan in one transaction: certificates (new ones as ``discovered``),
where each was seen (and where it is gone), findings synced per location, errors, the
run's counts, events and one audit entry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cryptography import x509

from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.discovery import (
    EndpointOutcome,
    FileOutcome,
    Finding,
    FindingCode,
    KeyUse,
    fingerprint,
    key_reuse_findings,
    spki_sha256,
)
from certfleet.discovery.records import (
    LocationKind,
    NewFinding,
    ScanError,
    ScanRun,
    ScanStatus,
    Sighting,
)
from certfleet.discovery.requests import ScanReport
from certfleet.inventory import CertificateRecord, Source
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services.notifications import EventKind, certificate_event, emit
from certfleet.x509 import CertificateFacts, is_ca

__all__ = ["MAX_STORED_ERRORS", "Judgement", "Observed", "ScanRecorder"]


def _storable(cert: x509.Certificate) -> CertificateFacts | None:
    """The inventory's facts, or None for a certificate its columns cannot hold (a serial
    over 20 octets, RFC 5280 section 4.1.2.2; an unparsable extension or key)."""
    try:
        facts = CertificateFacts.of(cert)
    except (ValueError, TypeError):
        return None
    if len(facts.serial) > 42 or len(facts.key_algorithm) > 20 or len(facts.signature_algorithm) > 60:
        return None
    return facts


@dataclass
class Observed:
    """Per location: the certificates seen there (leaf first) and what they ran with."""

    kind: LocationKind
    certificates: dict[tuple[str, str], list[x509.Certificate]] = field(default_factory=dict)
    tls: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    rescanned: set[tuple[str, str]] = field(default_factory=set)


MAX_STORED_ERRORS = 10_000


@dataclass(frozen=True)
class Judgement:
    """A scan judged: the run with its counts, what was seen where, findings and errors."""

    run: ScanRun
    observed: Observed
    findings: list[Finding]
    errors: list[ScanError]


class ScanRecorder:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def commit(
        self,
        run: ScanRun,
        team: str | None,
        observed: Observed,
        findings: list[Finding],
        errors: list[ScanError],
        *,
        endpoints: tuple[EndpointOutcome, ...] = (),
        files: tuple[FileOutcome, ...] = (),
    ) -> ScanReport:
        now = self._clock.now()
        kind = observed.kind
        with self._uow() as uow:
            ids, new = self._upsert_certificates(uow, observed, team, now, errors)
            sightings: list[Sighting] = []
            leaves: set[str] = set()
            for (location, sni), chain in observed.certificates.items():
                tls = observed.tls.get((location, sni))
                for position, cert in enumerate(chain):
                    fp = fingerprint(cert)
                    if fp not in ids:
                        continue
                    leaf = position == 0 if kind is LocationKind.ENDPOINT else not is_ca(cert)
                    if leaf:
                        leaves.add(fp)
                    sightings.append(
                        Sighting(
                            ids[fp],
                            kind,
                            location,
                            sni,
                            position,
                            leaf,
                            spki_sha256(cert.public_key()),
                            now,
                            run.id,
                            tls[0] if tls else None,
                            tls[1] if tls else None,
                        )
                    )
            uow.locations.record(sightings)
            here: dict[tuple[str, str], set[int]] = {(s.location, s.sni): set() for s in sightings}
            for s in sightings:
                here[(s.location, s.sni)].add(s.certificate_id)
            for present in uow.locations.present(kind, sorted(observed.rescanned)):
                if present.certificate_id not in here.get((present.location, present.sni), set()):
                    uow.locations.mark_gone(present.certificate_id, kind, present.location, present.sni, now)
            findings.extend(self._key_reuse(uow, sightings, observed.rescanned))
            stored = [
                NewFinding(
                    f.code,
                    kind,
                    f.location,
                    f.sni or "",
                    f.fingerprint_sha256 or "",
                    f.detail,
                    ids.get(f.fingerprint_sha256 or ""),
                )
                for f in findings
            ]
            scopes = observed.rescanned | {(f.location, f.sni or "") for f in findings}
            uow.findings.sync(scopes, stored, at=now, scan_id=run.id, team=team)
            uow.scans.add_errors(run.id, errors[:MAX_STORED_ERRORS])
            self._announce(uow, run.id, leaves & new, findings, now)
            run = replace(
                run,
                status=ScanStatus.COMPLETED,
                finished_at=now,
                certificates_found=len(ids),
                certificates_new=len(new),
                findings=len(set(findings)),
            )
            uow.scans.update(run)
            AuditLog(uow.audit, self._clock).record(
                run.requested_by,
                "discovery.scan",
                run.id,
                {
                    "kind": run.kind,
                    "targets": list(run.targets)[:50],
                    "targets_total": run.targets_total,
                    "failed": run.failed,
                    "certificates_found": run.certificates_found,
                    "certificates_new": len(new),
                    "findings": run.findings,
                },
            )
        return ScanReport(run, tuple(sorted(set(findings))), endpoints, files)

    def _upsert_certificates(
        self,
        uow: UnitOfWork,
        observed: Observed,
        team: str | None,
        now: dt.datetime,
        errors: list[ScanError],
    ) -> tuple[dict[str, int], set[str]]:
        """Add each new certificate (source ``discovered``); touch known ones, which keep
        their source, ``issued`` included. Returns fingerprint -> id and those added."""
        ids: dict[str, int] = {}
        new: set[str] = set()
        for (location, sni), chain in observed.certificates.items():
            for cert in chain:
                fp = fingerprint(cert)
                if fp in ids:
                    continue
                existing = uow.certificates.get_by_fingerprint(fp)
                if existing is not None and existing.id is not None:
                    uow.certificates.touch(existing.id, now)
                    ids[fp] = existing.id
                    continue
                facts = _storable(cert)
                if facts is None:
                    errors.append(
                        ScanError(location, "unstorable", f"certificate {fp} cannot be stored", sni or None)
                    )
                    continue
                record = uow.certificates.add(
                    CertificateRecord.from_facts(facts, source=Source.DISCOVERED, seen_at=now, team=team)
                )
                assert record.id is not None
                ids[fp] = record.id
                new.add(fp)
        return ids, new

    @staticmethod
    def _announce(
        uow: UnitOfWork, scan_id: str, new: set[str], findings: Sequence[Finding], now: dt.datetime
    ) -> None:
        """``discovered-unknown`` for each leaf new to the inventory and each certificate that
        chains to no trusted issuer, in the scan's transaction; once per certificate ever."""
        untrusted = {
            f.fingerprint_sha256: f.detail
            for f in findings
            if f.code is FindingCode.UNTRUSTED_ISSUER and f.fingerprint_sha256
        }
        keys = {f"discovered-unknown:{fp}": fp for fp in sorted(new | set(untrusted))}
        taken = uow.outbox.existing_keys(list(keys))
        for key, fp in keys.items():
            record = uow.certificates.get_by_fingerprint(fp) if key not in taken else None
            if record is None:
                continue
            reasons = [r for r, hit in (("new", fp in new), ("untrusted-issuer", fp in untrusted)) if hit]
            details = {"scan_id": scan_id, "reasons": reasons, "issuer_detail": untrusted.get(fp)}
            emit(
                uow,
                certificate_event(
                    uow, EventKind.DISCOVERED_UNKNOWN, record, now, details=details, dedup_key=key
                ),
            )

    @staticmethod
    def _key_reuse(
        uow: UnitOfWork, sightings: Sequence[Sighting], scopes: set[tuple[str, str]]
    ) -> list[Finding]:
        spkis = [s.spki_sha256 for s in sightings if s.leaf]
        if not spkis:
            return []
        uses = [
            KeyUse(
                loc.spki_sha256,
                loc.fingerprint_sha256,
                loc.location,
                loc.sni or None,
                loc.kind is LocationKind.ENDPOINT,
            )
            for loc in uow.locations.leaves_with_keys(spkis)
        ]
        report_for = {(s.location, s.sni) for s in sightings} | scopes
        return key_reuse_findings(uses, report_for)

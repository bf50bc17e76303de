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
    CertificateLocation,
    LocationKind,
    NewFinding,
    ScanError,
    ScanRun,
    ScanStatus,
    Sighting,
)
from certfleet.discovery.requests import ScanReport
from certfleet.inventory import CertificateRecord, Source
from certfleet.lifecycle.notifications.events import Event, EventKind
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
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


def _fresh_locations(
    sightings: Sequence[Sighting], fingerprints: dict[int, str]
) -> dict[int, list[CertificateLocation]]:
    """The locations of the certificates a scan just added (id -> fingerprint), as recording
    ``sightings`` stored them: one per certificate and place, the last sighting's values, in
    the order they were inserted (as ``LocationRepository.for_certificates`` reads them)."""
    latest: dict[tuple[int, str, str, str], Sighting] = {}
    for s in sightings:
        if s.certificate_id in fingerprints:
            latest[(s.certificate_id, s.kind.value, s.location, s.sni)] = s
    out: dict[int, list[CertificateLocation]] = {}
    for s in latest.values():
        out.setdefault(s.certificate_id, []).append(
            CertificateLocation(
                certificate_id=s.certificate_id,
                fingerprint_sha256=fingerprints[s.certificate_id],
                kind=s.kind,
                location=s.location,
                sni=s.sni,
                chain_position=s.chain_position,
                leaf=s.leaf,
                spki_sha256=s.spki_sha256,
                first_seen=s.seen_at,
                last_seen=s.seen_at,
                gone_at=None,
                last_scan_id=s.scan_id,
                tls_version=s.tls_version,
                cipher=s.cipher,
            )
        )
    return out


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
        chains: list[tuple[tuple[str, str], list[tuple[x509.Certificate, str]]]] = [
            (place, [(cert, fingerprint(cert)) for cert in chain])
            for place, chain in observed.certificates.items()
        ]
        with self._uow() as uow:
            ids, added = self.upsert_certificates(uow, chains, team, now, errors)
            sightings: list[Sighting] = []
            leaves: set[str] = set()
            for (location, sni), chain in chains:
                tls = observed.tls.get((location, sni))
                for position, (cert, fp) in enumerate(chain):
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
            uow.locations.mark_gone_unless_seen(kind, sorted(observed.rescanned), run.id, now)
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
            new_leaves = {fp: record for fp, record in added.items() if fp in leaves}
            self._announce(uow, run.id, new_leaves, findings, now, sightings)
            run = replace(
                run,
                status=ScanStatus.COMPLETED,
                finished_at=now,
                certificates_found=len(ids),
                certificates_new=len(added),
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
                    "certificates_new": len(added),
                    "findings": run.findings,
                },
            )
        return ScanReport(run, tuple(sorted(set(findings))), endpoints, files)

    @staticmethod
    def upsert_certificates(
        uow: UnitOfWork,
        chains: Sequence[tuple[tuple[str, str], Sequence[tuple[x509.Certificate, str]]]],
        team: str | None,
        now: dt.datetime,
        errors: list[ScanError],
    ) -> tuple[dict[str, int], dict[str, CertificateRecord]]:
        """Add each new certificate (source ``discovered``); touch known ones, which keep
        their source, ``issued`` included. A fleet shares its intermediates: each certificate
        is written once however many places presented it, in a few bulk statements. Returns
        fingerprint -> id, and the records this scan added."""
        first: dict[str, tuple[x509.Certificate, str, str]] = {}
        for (location, sni), chain in chains:
            for cert, fp in chain:
                first.setdefault(fp, (cert, location, sni))
        ids = dict(uow.locations.known_certificates(list(first), now))
        candidates: list[CertificateRecord] = []
        for fp, (cert, location, sni) in first.items():
            if fp in ids:
                continue
            facts = _storable(cert)
            if facts is None:
                errors.append(
                    ScanError(location, "unstorable", f"certificate {fp} cannot be stored", sni or None)
                )
                continue
            candidates.append(
                CertificateRecord.from_facts(facts, source=Source.DISCOVERED, seen_at=now, team=team)
            )
        added_ids, inserted = uow.locations.add_certificates(candidates)
        ids.update(added_ids)
        added = {
            r.fingerprint_sha256: r.with_id(added_ids[r.fingerprint_sha256])
            for r in candidates
            if r.fingerprint_sha256 in inserted
        }
        return ids, added

    @staticmethod
    def _announce(
        uow: UnitOfWork,
        scan_id: str,
        new: dict[str, CertificateRecord],
        findings: Sequence[Finding],
        now: dt.datetime,
        sightings: Sequence[Sighting],
    ) -> None:
        """``discovered-unknown`` for each leaf new to the inventory and each certificate that
        chains to no trusted issuer, in the scan's transaction; once per certificate ever.
        A certificate this scan added is only where this scan saw it (``sightings``, as
        recorded): its locations are not read back."""
        untrusted = {
            f.fingerprint_sha256: f.detail
            for f in findings
            if f.code is FindingCode.UNTRUSTED_ISSUER and f.fingerprint_sha256
        }
        keys = {f"discovered-unknown:{fp}": fp for fp in sorted(set(new) | set(untrusted))}
        taken = uow.outbox.existing_keys(list(keys))
        records: dict[str, CertificateRecord] = {}
        for key, fp in keys.items():
            if key in taken:
                continue
            record = new.get(fp) or uow.certificates.get_by_fingerprint(fp)
            if record is not None and record.id is not None:
                records[key] = record
        fresh = _fresh_locations(sightings, {r.id: fp for fp, r in new.items() if r.id is not None})
        seen_at = uow.locations.for_certificates(
            [r.id for r in records.values() if r.id is not None and r.id not in fresh]
        )
        seen_at.update(fresh)
        events: list[Event] = []
        for key, record in records.items():
            fp = record.fingerprint_sha256
            reasons = [r for r, hit in (("new", fp in new), ("untrusted-issuer", fp in untrusted)) if hit]
            event = Event(
                kind=EventKind.DISCOVERED_UNKNOWN,
                subject=record.serial,
                occurred_at=now,
                team=record.team,
                certificate=record.to_dict(now),
                # As certificate_event() shows them: where it is now.
                locations=tuple(
                    loc.to_dict() for loc in seen_at.get(record.id or 0, ()) if loc.gone_at is None
                ),
                details={"scan_id": scan_id, "reasons": reasons, "issuer_detail": untrusted.get(fp)},
                dedup_key=key,
            )
            events.append(event)
        # The transactional outbox, as emit() writes it, in bulk.
        uow.outbox.add_many(events)

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
            for loc in uow.locations.leaves_sharing_keys(spkis)
        ]
        report_for = {(s.location, s.sni) for s in sightings} | scopes
        return key_reuse_findings(uses, report_for)

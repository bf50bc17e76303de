"""Discovery as an application service: run a scan, judge what it found, and record it.

A scan is three transactions: the run is recorded as running (so a crash leaves a trace),
the network or disk is probed with no transaction open, then certificates, locations,
findings, errors and the run's counts are written together with one audit entry.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography import x509

from certfleet.access import Principal
from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.discovery import (
    BadTarget,
    CertificatePool,
    ChainAnalyzer,
    EndpointOutcome,
    EvaluationPolicy,
    FileOutcome,
    FileScanner,
    FileStatus,
    Finding,
    FindingCode,
    KeyUse,
    NetStatus,
    NetworkScanner,
    ScanObserver,
    endpoint_findings,
    file_findings,
    fingerprint,
    key_reuse_findings,
    lenient_parsing,
    load_system_anchors,
    spki_sha256,
)
from certfleet.discovery.records import (
    CertificateLocation,
    FindingQuery,
    LocationKind,
    NewFinding,
    ScanError,
    ScanRun,
    ScanStatus,
    Sighting,
    StoredFinding,
)
from certfleet.discovery.requests import FileScanRequest, NetScanRequest, ScanReport, parse_trust_bundle
from certfleet.errors import NotFound
from certfleet.inventory import CertificateRecord, Source
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services.notifications import EventKind, certificate_event, emit
from certfleet.x509 import CertificateFacts

__all__ = ["DiscoveryService", "FileScanRequest", "NetScanRequest", "ScanReport", "parse_trust_bundle"]

MAX_STORED_ERRORS = 10_000
MAX_POOL = 5_000


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


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
class _Observed:
    """Per location: the certificates seen there (leaf first) and what they ran with."""

    kind: LocationKind
    certificates: dict[tuple[str, str], list[x509.Certificate]] = field(default_factory=dict)
    tls: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    rescanned: set[tuple[str, str]] = field(default_factory=set)


class DiscoveryService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        system_anchors: Callable[[], Sequence[x509.Certificate]] = load_system_anchors,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._system_anchors = system_anchors
        self._system: tuple[x509.Certificate, ...] | None = None

    # -- running scans -----------------------------------------------------------------

    def submit(
        self, kind: str, targets: Sequence[str], options: dict[str, Any], *, actor: str, team: str | None
    ) -> ScanRun:
        """Record a scan to be run later (by :meth:`scan_network` or :meth:`scan_files`
        with ``run_id``): the REST API answers with its id at once."""
        run = ScanRun(
            id=secrets.token_hex(16),
            kind=kind,
            status=ScanStatus.PENDING,
            targets=tuple(targets),
            options=options,
            requested_by=actor,
            created_at=self._clock.now(),
            team=team,
        )
        with self._uow() as uow:
            uow.scans.add(run)
        return run

    def _begin(
        self,
        kind: str,
        targets: Sequence[str],
        options: dict[str, Any],
        actor: str,
        team: str | None,
        run_id: str | None,
    ) -> ScanRun:
        now = self._clock.now()
        with self._uow() as uow:
            existing = uow.scans.get(run_id) if run_id else None
            run = existing or ScanRun(
                id=run_id or secrets.token_hex(16),
                kind=kind,
                status=ScanStatus.PENDING,
                targets=tuple(targets),
                options=options,
                requested_by=actor,
                created_at=now,
                team=team,
            )
            run = replace(run, status=ScanStatus.RUNNING, started_at=now)
            uow.scans.update(run)
        return run

    def fail(self, run_id: str, error: str) -> None:
        """Mark a run failed (a bug or a lost database, not a bad target)."""
        with self._uow() as uow:
            run = uow.scans.get(run_id)
            if run is not None:
                uow.scans.update(
                    replace(run, status=ScanStatus.FAILED, finished_at=self._clock.now(), error=error[:2000])
                )

    def scan_network(
        self,
        request: NetScanRequest,
        *,
        actor: str,
        observer: ScanObserver | None = None,
        run_id: str | None = None,
    ) -> ScanReport:
        endpoints = request.endpoints()  # a bad target is refused before anything is recorded
        run = self._begin("net", request.targets, request.describe(), actor, request.team, run_id)
        try:
            outcomes = NetworkScanner(request.options).run(endpoints, observer)
            with lenient_parsing():
                return self._record_network(run, request, outcomes)
        except Exception as exc:
            self.fail(run.id, f"{type(exc).__name__}: {exc}")
            raise

    def scan_files(
        self,
        request: FileScanRequest,
        *,
        actor: str,
        observer: ScanObserver | None = None,
        run_id: str | None = None,
    ) -> ScanReport:
        if not request.paths:
            raise BadTarget("no paths given")
        run = self._begin("files", request.paths, request.describe(), actor, request.team, run_id)
        try:
            result = FileScanner(request.options).scan([Path(p) for p in request.paths], observer)
            with lenient_parsing():
                return self._record_files(run, request, result.outcomes, result.listed, result.files_read)
        except Exception as exc:
            self.fail(run.id, f"{type(exc).__name__}: {exc}")
            raise

    # -- judging -------------------------------------------------------------------------

    def _analyzer(
        self, extra_trust: Sequence[x509.Certificate], seen_cas: Sequence[x509.Certificate]
    ) -> ChainAnalyzer:
        if self._system is None:
            self._system = tuple(self._system_anchors())
        with self._uow() as uow:
            ours = [ca.certificate for ca in uow.cas.list()]
            known = uow.locations.known_intermediates(MAX_POOL)
        pool = CertificatePool(seen_cas)
        for der in known:
            try:
                pool.add(x509.load_der_x509_certificate(der))
            except ValueError:
                continue
        return ChainAnalyzer(CertificatePool([*self._system, *ours, *extra_trust]), pool)

    def _policy(self, expiring_days: int) -> EvaluationPolicy:
        if not 0 <= expiring_days <= 3650:
            raise BadTarget("expiring days must be between 0 and 3650")
        return EvaluationPolicy(self._clock.now(), dt.timedelta(days=expiring_days))

    def _record_network(
        self, run: ScanRun, request: NetScanRequest, outcomes: Sequence[EndpointOutcome]
    ) -> ScanReport:
        policy = self._policy(request.expiring_days)
        seen_cas = [c for o in outcomes if o.observation for c in o.observation.chain[1:]]
        analyzer = self._analyzer(request.trust, seen_cas)
        findings: list[Finding] = []
        observed = _Observed(LocationKind.ENDPOINT)
        errors: list[ScanError] = []
        for outcome in outcomes:
            place = (outcome.location, outcome.endpoint.sni or "")
            if outcome.observation is not None:
                findings.extend(endpoint_findings(outcome, analyzer, policy))
                observed.certificates[place] = list(outcome.observation.chain)
                observed.tls[place] = (outcome.observation.tls_version, outcome.observation.cipher)
            else:
                errors.append(
                    ScanError(
                        outcome.location, outcome.status.value, outcome.reason or "", outcome.endpoint.sni
                    )
                )
            # Only a completed handshake or a refused port says what is (not) there now.
            if outcome.status in (NetStatus.OK, NetStatus.REFUSED):
                observed.rescanned.add(place)
        ok = sum(1 for o in outcomes if o.ok)
        run = replace(run, targets_total=len(outcomes), succeeded=ok, failed=len(outcomes) - ok)
        return self._commit(run, request.team, observed, findings, errors, endpoints=tuple(outcomes))

    def _record_files(
        self,
        run: ScanRun,
        request: FileScanRequest,
        outcomes: Sequence[FileOutcome],
        listed: set[str],
        files_read: int,
    ) -> ScanReport:
        policy = self._policy(request.expiring_days)
        seen_cas = [c for o in outcomes for c in o.certificates if _is_ca(c)]
        analyzer = self._analyzer(request.trust, seen_cas)
        findings = file_findings(outcomes, analyzer, policy)
        observed = _Observed(LocationKind.FILE)
        errors: list[ScanError] = []
        unsure: set[str] = set()
        for outcome in outcomes:
            if outcome.certificates:
                observed.certificates[(outcome.path, "")] = list(outcome.certificates)
            if not outcome.ok:
                errors.append(ScanError(outcome.path, outcome.status.value, outcome.reason or ""))
            definite = outcome.status in (FileStatus.OK, FileStatus.MALFORMED) or (
                outcome.status is FileStatus.SKIPPED and (outcome.reason or "").startswith("does not exist")
            )
            if definite:
                observed.rescanned.add((outcome.path, ""))
            else:
                unsure.add(outcome.path)

        def rescanned(path: str) -> bool:
            # A file read again, or one that should have been met in a directory listed whole.
            return path not in unsure and (
                (path, "") in observed.rescanned or str(PurePosixPath(path).parent) in listed
            )

        roots = [str(Path(p).absolute()) for p in request.paths]
        with self._uow() as uow:
            stale = {(loc.location, loc.sni) for loc in uow.locations.present_under(roots)}
            stale |= uow.findings.open_under(roots)
        observed.rescanned |= {place for place in stale if rescanned(place[0])}
        ok = sum(1 for o in outcomes if o.ok)
        # A symlink left alone by choice is not a failure (--follow-symlinks would take it).
        failed = sum(1 for o in outcomes if not o.ok and o.reason != "symlink not followed")
        run = replace(
            run,
            targets_total=files_read + sum(1 for o in outcomes if o.status is FileStatus.SKIPPED),
            succeeded=ok,
            failed=failed,
        )
        return self._commit(run, request.team, observed, findings, errors, files=tuple(outcomes))

    # -- recording -----------------------------------------------------------------------

    def _commit(
        self,
        run: ScanRun,
        team: str | None,
        observed: _Observed,
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
                    leaf = position == 0 if kind is LocationKind.ENDPOINT else not _is_ca(cert)
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
        observed: _Observed,
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

    # -- reading -------------------------------------------------------------------------

    def get_scan(
        self, run_id: str, principal: Principal | None = None, *, error_limit: int = 1000
    ) -> tuple[ScanRun, Sequence[ScanError]]:
        with self._uow() as uow:
            run = uow.scans.get(run_id)
            if run is None or (principal is not None and not principal.can_see_team(run.team)):
                raise NotFound(f"no scan {run_id!r}")
            return run, uow.scans.errors(run_id, error_limit)

    def findings(self, query: FindingQuery) -> Sequence[StoredFinding]:
        with self._uow() as uow:
            return uow.findings.query(query)

    def locations(self, record: CertificateRecord) -> Sequence[CertificateLocation]:
        assert record.id is not None
        with self._uow() as uow:
            return uow.locations.for_certificate(record.id)

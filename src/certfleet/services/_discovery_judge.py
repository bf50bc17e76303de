"""Judging what a scan found: chains, expiry, weak keys, key reuse candidates, and which
locations were seen anew (so what is no longer there can be marked gone)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from cryptography import x509

from certfleet.clock import Clock
from certfleet.discovery import (
    BadTarget,
    CertificatePool,
    ChainAnalyzer,
    EndpointOutcome,
    EvaluationPolicy,
    FileOutcome,
    FileStatus,
    Finding,
    NetStatus,
    endpoint_findings,
    file_findings,
)
from certfleet.discovery.findings import CertificateVerdicts
from certfleet.discovery.records import (
    LocationKind,
    ScanError,
    ScanRun,
)
from certfleet.discovery.requests import FileScanRequest, NetScanRequest
from certfleet.services._discovery_record import Judgement, Observed
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.x509 import is_ca

__all__ = ["MAX_POOL", "KnownTrust", "ScanJudge"]

MAX_POOL = 5_000


@dataclass(frozen=True)
class KnownTrust:
    """The anchors a scan's chains are judged against (the system's, our CAs, the request's
    extra ones) and the intermediates met by earlier scans (at most MAX_POOL), which may
    complete a chain a server sends incomplete."""

    anchors: CertificatePool
    intermediates: tuple[x509.Certificate, ...]


class ScanJudge:
    """Findings for what a scan saw, against the trust it was given, the system's anchors,
    our CAs and intermediates met before; and which locations the scan saw anew."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        system_anchors: Callable[[], Sequence[x509.Certificate]],
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._system_anchors = system_anchors
        self._system: tuple[x509.Certificate, ...] | None = None

    def trust(self, extra_trust: Sequence[x509.Certificate]) -> KnownTrust:
        """What judging needs besides the scan's outcomes; :meth:`network` reads it itself
        when not given it (the discovery service reads it while the handshakes run)."""
        if self._system is None:
            self._system = tuple(self._system_anchors())
        with self._uow() as uow:
            ours = [ca.certificate for ca in uow.cas.list()]
            known = uow.locations.known_intermediates(MAX_POOL)
        intermediates: list[x509.Certificate] = []
        for der in known:
            try:
                intermediates.append(x509.load_der_x509_certificate(der))
            except ValueError:
                continue
        return KnownTrust(CertificatePool([*self._system, *ours, *extra_trust]), tuple(intermediates))

    def _analyzer(self, trust: KnownTrust, seen_cas: Sequence[x509.Certificate]) -> ChainAnalyzer:
        pool = CertificatePool(seen_cas)
        for cert in trust.intermediates:
            pool.add(cert)
        return ChainAnalyzer(trust.anchors, pool)

    def _policy(self, expiring_days: int) -> EvaluationPolicy:
        if not 0 <= expiring_days <= 3650:
            raise BadTarget("expiring days must be between 0 and 3650")
        return EvaluationPolicy(self._clock.now(), dt.timedelta(days=expiring_days))

    def network(
        self,
        run: ScanRun,
        request: NetScanRequest,
        outcomes: Sequence[EndpointOutcome],
        trust: KnownTrust | None = None,
    ) -> Judgement:
        policy = self._policy(request.expiring_days)
        seen_cas = [c for o in outcomes if o.observation for c in o.observation.chain[1:]]
        analyzer = self._analyzer(trust or self.trust(request.trust), seen_cas)
        findings: list[Finding] = []
        observed = Observed(LocationKind.ENDPOINT)
        errors: list[ScanError] = []
        judged: CertificateVerdicts = {}  # each certificate once, however many present it
        for outcome in outcomes:
            place = (outcome.location, outcome.endpoint.sni or "")
            if outcome.observation is not None:
                findings.extend(endpoint_findings(outcome, analyzer, policy, judged))
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
        return Judgement(run, observed, findings, errors)

    def files(
        self,
        run: ScanRun,
        request: FileScanRequest,
        outcomes: Sequence[FileOutcome],
        listed: set[str],
        files_read: int,
    ) -> Judgement:
        policy = self._policy(request.expiring_days)
        seen_cas = [c for o in outcomes for c in o.certificates if is_ca(c)]
        analyzer = self._analyzer(self.trust(request.trust), seen_cas)
        findings = file_findings(outcomes, analyzer, policy)
        observed = Observed(LocationKind.FILE)
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
        return Judgement(run, observed, findings, errors)

"""Discovery as an application service: run a scan, judge what it found, and record it.

A scan is three transactions: the run is recorded as running (so a crash leaves a trace),
the network or disk is probed with no transaction open, then certificates, locations,
findings, errors and the run's counts are written together with one audit entry.
Judging lives in :mod:`._discovery_judge`, recording in :mod:`._discovery_record`.
"""

from __future__ import annotations

import datetime as dt
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from certfleet.clock import Clock
from certfleet.discovery import BadTarget, ScanObserver, lenient_parsing, load_system_anchors
from certfleet.discovery.records import (
    CertificateLocation,
    FindingQuery,
    ScanError,
    ScanRun,
    ScanStatus,
    StoredFinding,
)
from certfleet.discovery.requests import FileScanRequest, NetScanRequest, ScanReport, parse_trust_bundle
from certfleet.errors import NotFound
from certfleet.services._discovery_judge import ScanJudge
from certfleet.services._discovery_record import ScanRecorder

if TYPE_CHECKING:
    from certfleet.access import Principal
    from certfleet.discovery import Endpoint, EndpointOutcome
    from certfleet.discovery.truststores import StoreReading
    from certfleet.inventory import CertificateRecord
    from certfleet.policy import Policy
    from certfleet.services._ports import UnitOfWorkFactory
    from certfleet.services._trust_record import TrustStoresRecorded, agent_readings
    from certfleet.services.trust_report import TrustReport

    # Probes endpoints as NetworkScanner.run does: one outcome per endpoint, in their order.
    EndpointScanner = Callable[[Sequence[Endpoint], ScanObserver | None], list[EndpointOutcome]]

# A network scan (``certfleet scan net``) imports neither the file scanner (its formats and
# keystores), the trust-store readers and recorder nor the trust report (the policy engine):
# each is imported by the method that uses it (issue 11: the scan CLI's start-up).

__all__ = [
    "DiscoveryService",
    "FileScanRequest",
    "NetScanRequest",
    "ScanReport",
    "agent_readings",
    "parse_trust_bundle",
]


def _failure(exc: BaseException) -> str:
    """Why a run failed, as its record says: a Ctrl-C or SIGTERM is not a bug, but the run
    it stopped is over all the same (it must not stay 'running'), and nothing of its
    results was written (the recording transaction rolled back)."""
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def _pending(
    run_id: str | None,
    kind: str,
    targets: Sequence[str],
    options: dict[str, Any],
    actor: str,
    team: str | None,
    now: dt.datetime,
) -> ScanRun:
    return ScanRun(
        id=run_id or secrets.token_hex(16),
        kind=kind,
        status=ScanStatus.PENDING,
        targets=tuple(targets),
        options=options,
        requested_by=actor,
        created_at=now,
        team=team,
    )


def _network_scanner(request: NetScanRequest) -> EndpointScanner:
    # Imported here: the CLI scans in a child process and never loads asyncio, ssl or the
    # probes (issue 11: the scan CLI's start-up).
    from certfleet.discovery.scanner import NetworkScanner

    return NetworkScanner(request.options).run


class DiscoveryService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        system_anchors: Callable[[], Sequence[x509.Certificate]] = load_system_anchors,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._judge = ScanJudge(uow, clock, system_anchors)
        self._recorder = ScanRecorder(uow, clock)

    # -- running scans -----------------------------------------------------------------

    def submit(
        self, kind: str, targets: Sequence[str], options: dict[str, Any], *, actor: str, team: str | None
    ) -> ScanRun:
        """Record a scan to be run later (by :meth:`scan_network` or :meth:`scan_files`
        with ``run_id``): the REST API answers with its id at once."""
        run = _pending(None, kind, targets, options, actor, team, self._clock.now())
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
        given, run_id = run_id, run_id or secrets.token_hex(16)
        try:
            with self._uow() as uow:
                existing = uow.scans.get(run_id) if given else None
                run = existing or _pending(run_id, kind, targets, options, actor, team, now)
                run = replace(run, status=ScanStatus.RUNNING, started_at=now)
                uow.scans.update(run)
        except (KeyboardInterrupt, SystemExit) as exc:
            # A Ctrl-C (or SIGTERM) can land once the run is committed but before the
            # caller's handler covers it: while the connection returns to the pool (its
            # reset). The run must not stay 'running'. (Nothing after this block checks for
            # signals before the caller's ``try`` is entered: no call, no backward jump.)
            self.fail(run_id, _failure(exc))
            raise
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
        scanner: EndpointScanner | None = None,
    ) -> ScanReport:
        """``scanner`` probes the endpoints (default: a :class:`NetworkScanner` with the
        request's options); the CLI passes one whose handshakes started in a child process
        before the database was opened (``certfleet.cli._scan_child``)."""
        endpoints = request.endpoints()  # a bad target is refused before anything is recorded
        run = self._begin("net", request.targets, request.describe(), actor, request.team, run_id)
        try:
            # Read before the handshakes' outcomes are awaited: a scanner already running
            # (the CLI's child process) scans meanwhile.
            with lenient_parsing():
                trust = self._judge.trust(request.trust)
            scan = scanner or _network_scanner(request)
            outcomes = scan(endpoints, observer)
            with lenient_parsing():
                judged = self._judge.network(run, request, outcomes, trust)
                return self._recorder.commit(
                    judged.run,
                    request.team,
                    judged.observed,
                    judged.findings,
                    judged.errors,
                    endpoints=tuple(outcomes),
                )
        except BaseException as exc:
            self.fail(run.id, _failure(exc))
            raise

    def scan_files(
        self,
        request: FileScanRequest,
        *,
        actor: str,
        observer: ScanObserver | None = None,
        run_id: str | None = None,
    ) -> ScanReport:
        from certfleet.discovery.files import FileScanner
        from certfleet.discovery.truststores import read_stores, well_known_stores

        if request.trust_stores:
            extra = [str(p) for p in well_known_stores(Path(request.root))]
            request = replace(request, paths=(*request.paths, *extra))
        if not request.paths:
            raise BadTarget(
                "no paths given"
                + (f" and no trust store under {request.root}" if request.trust_stores else "")
            )
        run = self._begin("files", request.paths, request.describe(), actor, request.team, run_id)
        try:
            result = FileScanner(request.options).scan([Path(p) for p in request.paths], observer)
            with lenient_parsing():
                judged = self._judge.files(run, request, result.outcomes, result.listed, result.files_read)
                report = self._recorder.commit(
                    judged.run,
                    request.team,
                    judged.observed,
                    judged.findings,
                    judged.errors,
                    files=tuple(result.outcomes),
                )
            # The stores met on the walk (recognised by their paths), each read once.
            readings = read_stores(sorted(result.examined), request.options.passwords)
            if not readings:
                return report
            host = request.host or socket.gethostname()
            stored = self.record_trust_stores(host, readings, team=request.team, actor=actor)
            return replace(report, stores=stored.to_dict())
        except BaseException as exc:
            self.fail(run.id, _failure(exc))
            raise

    def record_trust_stores(
        self, host: str, readings: Sequence[StoreReading], *, team: str | None, actor: str
    ) -> TrustStoresRecorded:
        """Record the roots ``host``'s stores trust (a file scan's, or an agent's report)."""
        from certfleet.services._trust_record import TrustStoreRecorder

        return TrustStoreRecorder(self._uow, self._clock).record(host, readings, team=team, actor=actor)

    def trust_report(
        self, policy: Policy | None, *, horizon_days: int | None = None, team: str | None = None
    ) -> TrustReport:
        """``horizon_days`` defaults to the trust report's own (DEFAULT_HORIZON_DAYS)."""
        from certfleet.services.trust_report import DEFAULT_HORIZON_DAYS, TrustReportService

        horizon = DEFAULT_HORIZON_DAYS if horizon_days is None else horizon_days
        return TrustReportService(self._uow, self._clock).report(policy, horizon_days=horizon, team=team)

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


def __getattr__(name: str) -> Any:
    # agent_readings (the REST API's trust-store reports) lives with the trust-store recorder.
    if name == "agent_readings":
        from certfleet.services._trust_record import agent_readings

        return agent_readings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Automatic renewal: plan a renewal time for every managed certificate, then renew the due
ones exactly once, however many ``certfleet serve`` processes share the database.

Which certificates the server renews itself: those its CA issued through the CLI or the REST
API. Their key stays with the requester, and certfleet keeps no private key, so renewal
certifies **the same public key** again, with the same names, profile, team and tags (what
step-ca's ``renew`` does). The holder fetches the replacement from
``GET /api/v1/certificates/{serial}/successor``; lineage records that the new certificate
supersedes the old one, whose status becomes ``superseded``. A new key is the key holder's
job (or a rotation campaign's, see ``services.rotation``).

Certificates from ACME orders and certfleet agents renew themselves on their ARI window
(RFC 9773) and the HTTPS listener's own certificate is renewed by ``serve``: the planner
records them as ``external`` and never issues for them.

Exactly once: a job row per certificate (primary key), leases with fencing tokens, at most one
successor per certificate (unique constraint), and a retry first looks for a replacement a
crashed attempt already issued (same key and names, issued since the job fell due) before
issuing another.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)

from certfleet.audit import AuditLog, CertificateRef
from certfleet.ca import CaCertificate, IssuanceRequest, chain_below_root
from certfleet.clock import Clock
from certfleet.errors import CertfleetError, Conflict, NotFound
from certfleet.inventory import CertificateRecord, Status
from certfleet.lifecycle.jobs import JobState, Lease, PlanCandidate, RenewalJob, external_reason, new_job
from certfleet.lifecycle.lineage import LineageKind, LineageLink
from certfleet.lifecycle.planning import backoff, window_time
from certfleet.lifecycle.settings import LifecycleSettings
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services._renewal_results import (
    LeaseLost,
    RenewalOutcome,
    Revoker,
    RoundReport,
    validity_days,
    worker_id,
)
from certfleet.services.issuance import IssuanceService
from certfleet.services.notifications import EventKind, certificate_event, emit
from certfleet.x509 import spki_der

__all__ = ["LeaseLost", "RenewalOutcome", "RenewalService", "Revoker", "RoundReport", "worker_id"]

_PAGE = 10_000  # certificates per transaction: fewer commits rewrite fewer index pages
FULL_SWEEP_SECONDS = 600.0
# A first plan of at least this many certificates loads its jobs in bulk (see
# RenewalJobRepository.begin_bulk_plan): below it, the row-by-row load costs about the same.
BULK_PLAN_MIN = 50_000
_OVERRIDE_HORIZON = dt.timedelta(days=7)  # older overrides were applied when they were new
_ID_SLACK = 10_000  # ids behind the newest seen that a round re-reads (late commits)
_MAX_LINEAGE = 1000  # hops followed to the newest certificate: a guard, never reached
RENEWAL_ACTOR = "system:renewal"


class RenewalService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        issuance: IssuanceService,
        hierarchy: Callable[[], Sequence[CaCertificate]],
        clock: Clock,
        settings: LifecycleSettings,
        *,
        revoke: Revoker | None = None,
    ) -> None:
        self._uow = uow
        self._issuance = issuance
        self._hierarchy = hierarchy
        self._clock = clock
        self.settings = settings
        self._revoke = revoke
        self.worker = worker_id()
        self._swept_at: float | None = None
        self._high_water = 0

    # -- planning ---------------------------------------------------------------------------

    def plan(self) -> tuple[int, int]:
        """Give every new managed certificate its job; move jobs whose ARI window an operator
        changed since. Returns (jobs created, jobs rescheduled).

        A round looks only at certificates newer than those seen, less a slack of ids for
        transactions that committed out of id order; a full sweep every ten minutes (and at
        start) catches anything older, so an idle round costs an index probe, not a scan."""
        now = self._clock.now()
        full = self._swept_at is None or time.monotonic() - self._swept_at >= FULL_SWEEP_SECONDS
        bulk = False
        if full:
            with self._uow() as uow:
                newest = uow.lifecycle.jobs.latest_certificate_id()
                bulk = uow.lifecycle.jobs.begin_bulk_plan(BULK_PLAN_MIN)
        try:
            planned = self._plan_pages(0 if full else max(0, self._high_water - _ID_SLACK), now)
        finally:
            if bulk:
                with self._uow() as uow:
                    uow.lifecycle.jobs.end_bulk_plan()
        if full:
            self._swept_at = time.monotonic()
            self._high_water = max(self._high_water, newest)
        with self._uow() as uow:
            moved = uow.lifecycle.jobs.overridden(now - _OVERRIDE_HORIZON, _PAGE)
            for job, window in moved:
                uow.lifecycle.jobs.reschedule(job.certificate_id, window_time(window, job.serial), now)
        return planned, len(moved)

    def _plan_pages(self, after: int, now: dt.datetime) -> int:
        """Plan the certificates without a job after id ``after``, a page per transaction."""
        planned = 0
        while True:
            with self._uow() as uow:
                jobs = uow.lifecycle.jobs
                size, last = jobs.next_page(after, _PAGE)
                if size:
                    # Plain certificates are planned in the database; the rest come back.
                    planned += jobs.add_computed(after, last, now)
                    planned += jobs.add(list(map(new_job, jobs.unplanned(after, _PAGE, last))), now)
            self._high_water = max(self._high_water, last)
            if size < _PAGE:
                return planned
            after = last

    # -- running ----------------------------------------------------------------------------

    def run_due(self, *, limit: int | None = None) -> RoundReport:
        """One scheduler round at the clock's ``now``: plan, then lease and renew due jobs in
        batches until none is due (or ``limit`` / ``max_per_round`` were handled)."""
        report = RoundReport()
        report.planned, report.rescheduled = self.plan()
        budget = limit if limit is not None else self.settings.max_per_round
        while budget > 0:
            now = self._clock.now()
            lease = Lease(self.worker, secrets.token_hex(16), now + self.settings.lease)
            with self._uow() as uow:
                jobs = uow.lifecycle.jobs.lease_due(now, lease, min(self.settings.batch_size, budget))
            if not jobs:
                break
            for job in jobs:
                report.outcomes.append(self._run(job, lease))
            budget -= len(jobs)
        return report

    def _run(self, job: RenewalJob, lease: Lease) -> RenewalOutcome:
        try:
            return self._renew(job, lease)
        except LeaseLost as exc:
            return RenewalOutcome(job.serial, JobState.LEASED, exc.detail)
        except CertfleetError as exc:
            return self._failed(job, lease, exc.detail)
        except Exception as exc:  # noqa: BLE001 - the outermost job handler: record, go on
            return self._failed(job, lease, f"{type(exc).__name__}: {exc}")

    def _finish(self, job: RenewalJob, lease: Lease, state: JobState, detail: str) -> RenewalOutcome:
        with self._uow() as uow:
            if not uow.lifecycle.jobs.finish(
                job.certificate_id, lease.token, state, self._clock.now(), reason=detail
            ):
                raise LeaseLost(f"lost the lease on {job.serial}")
        return RenewalOutcome(job.serial, state, detail)

    def _renew(self, job: RenewalJob, lease: Lease) -> RenewalOutcome:
        with self._uow(read_only=True) as uow:
            record = uow.lifecycle.lineage.certificate(job.certificate_id)
            successor_id = uow.lifecycle.lineage.successor(job.certificate_id)
            successor = uow.lifecycle.lineage.certificate(successor_id) if successor_id else None
        if record is None:
            return self._finish(job, lease, JobState.SKIPPED, "certificate no longer in the inventory")
        if successor is not None:
            # Replaced meanwhile (a campaign, another path): nothing left to do.
            with self._uow() as uow:
                uow.lifecycle.jobs.finish(
                    job.certificate_id,
                    lease.token,
                    JobState.DONE,
                    self._clock.now(),
                    successor_id=successor.id,
                )
            return RenewalOutcome(job.serial, JobState.DONE, "already replaced", successor.serial)
        if record.status is not Status.ACTIVE:
            return self._finish(job, lease, JobState.SKIPPED, f"certificate is {record.status.value}")
        now = self._clock.now()
        if record.not_after + (record.not_after - record.not_before) < now:
            # Expired a whole lifetime ago: nobody is waiting for this one any more.
            return self._finish(job, lease, JobState.SKIPPED, f"expired on {record.not_after:%Y-%m-%d}")

        def claim(uow: UnitOfWork, new: CertificateRecord) -> bool:
            return uow.lifecycle.jobs.finish(
                job.certificate_id, lease.token, JobState.DONE, self._clock.now(), successor_id=new.id
            )

        try:
            new = self.reissue(
                record, kind=LineageKind.RENEWAL, actor=RENEWAL_ACTOR, since=job.renew_at, claim=claim
            )
        except LeaseLost:
            raise
        except Conflict:
            # Another path recorded a replacement first (ours, if any, was revoked).
            with self._uow() as uow:
                winner = uow.lifecycle.lineage.successor(job.certificate_id)
                if winner is None:
                    raise
                uow.lifecycle.jobs.finish(
                    job.certificate_id, lease.token, JobState.DONE, self._clock.now(), successor_id=winner
                )
            return RenewalOutcome(job.serial, JobState.DONE, "already replaced")
        return RenewalOutcome(job.serial, JobState.DONE, "renewed", new.serial)

    def _failed(self, job: RenewalJob, lease: Lease, reason: str) -> RenewalOutcome:
        now = self._clock.now()
        failures = job.failures + 1
        retry_at = now + backoff(failures)
        with self._uow() as uow:
            if not uow.lifecycle.jobs.retry(job.certificate_id, lease.token, reason, retry_at, now):
                return RenewalOutcome(job.serial, JobState.LEASED, f"lost the lease on {job.serial}")
            record = uow.lifecycle.lineage.certificate(job.certificate_id)
            AuditLog(uow.audit, self._clock).record(
                RENEWAL_ACTOR,
                "certificate.renewal-failed",
                CertificateRef(job.serial, record.issuer).subject if record is not None else job.serial,
                {"reason": reason, "failures": failures, "retry_at": retry_at.isoformat()},
            )
            if record is not None:
                details = {"reason": reason, "failures": failures, "retry_at": retry_at.isoformat()}
                event = certificate_event(
                    uow,
                    EventKind.RENEWAL_FAILED,
                    record,
                    now,
                    details=details,
                    dedup_key=f"renewal-failed:{job.serial}:{failures}",
                )
                emit(uow, event)
        return RenewalOutcome(job.serial, JobState.RETRY, reason)

    # -- the renewal path, shared with rotation campaigns -------------------------------------

    def reissue(
        self,
        record: CertificateRecord,
        *,
        kind: LineageKind,
        actor: str,
        since: dt.datetime,
        claim: Callable[[UnitOfWork, CertificateRecord], bool],
        issuance: IssuanceService | None = None,
        expected_ca: str | None = None,
        public_key: CertificatePublicKeyTypes | None = None,
        private_key: CertificateIssuerPrivateKeyTypes | None = None,
        campaign_id: str | None = None,
        profile: str | None = None,
    ) -> CertificateRecord:
        """Issue the successor of ``record``: its names, profile (``profile`` instead, when a
        campaign moves to another), lifetime, team and tags, and its public key unless another
        is given. A replacement a crashed attempt issued since
        ``since`` is adopted instead of issuing again. One transaction then records the
        lineage (the old certificate becomes superseded), runs ``claim`` (the caller's lease
        check: False rolls back) and emits the ``renewed`` event."""
        if record.profile is None or record.id is None:
            raise NotFound(f"certificate {record.serial} has no recorded profile to renew with")
        key = public_key or record.certificate().public_key()
        new = self._adoptable(record, key, since, expected_ca)
        adopted = new is not None
        if new is None:
            request = IssuanceRequest(
                profile or record.profile, key, tuple(record.sans), record.common_name, validity_days(record)
            )
            new = (
                (issuance or self._issuance)
                .issue(request, actor=actor, team=record.team, tags=record.tags, private_key=private_key)
                .record
            )
        assert new.id is not None
        now = self._clock.now()
        try:
            with self._uow() as uow:
                uow.lifecycle.lineage.add(LineageLink(new.id, record.id, kind, now, actor, campaign_id))
                # The successor's own renewal is planned at once, not at the next round.
                candidate = PlanCandidate(
                    new.id, new.serial, new.not_before, new.not_after, external_reason(new.tags, False)
                )
                uow.lifecycle.jobs.add([new_job(candidate)], now)
                if not claim(uow, new):
                    raise LeaseLost(f"lost the lease on {record.serial}")
                AuditLog(uow.audit, self._clock).record(
                    actor,
                    f"certificate.{kind.value}",
                    CertificateRef(record.serial, record.issuer).subject,
                    {
                        "successor": CertificateRef(new.serial, new.issuer).subject,
                        "adopted": adopted,
                        "campaign": campaign_id,
                        "worker": self.worker,
                    },
                )
                details = {"supersedes": record.serial, "kind": kind.value, "campaign": campaign_id}
                emit(
                    uow,
                    certificate_event(
                        uow, EventKind.RENEWED, new, now, details=details, dedup_key=f"renewed:{new.serial}"
                    ),
                )
        except LeaseLost:
            raise  # the new lease holder adopts what we issued
        except Conflict:
            self._drop_orphan(record, new, actor)
            raise
        return new

    def _drop_orphan(self, record: CertificateRecord, new: CertificateRecord, actor: str) -> None:
        """Another worker recorded a different successor first: revoke ours, so a certificate
        never has two live replacements."""
        assert record.id is not None
        with self._uow(read_only=True) as uow:
            winner = uow.lifecycle.lineage.successor(record.id)
        if winner != new.id and self._revoke is not None:
            self._revoke(new.serial, "superseded", actor=actor)

    def _adoptable(
        self,
        record: CertificateRecord,
        key: CertificatePublicKeyTypes,
        since: dt.datetime,
        expected_ca: str | None,
    ) -> CertificateRecord | None:
        if not record.sans or record.id is None:
            return None
        want = spki_der(key)
        with self._uow(read_only=True) as uow:
            found = uow.lifecycle.lineage.unlinked_with_name(record.id, record.sans[0], 100)
        for candidate in found:
            if candidate.first_seen < since or set(candidate.sans) != set(record.sans):
                continue
            if candidate.status is not Status.ACTIVE:
                continue
            if expected_ca is not None and candidate.issuer_ca_id != expected_ca:
                continue
            if spki_der(candidate.certificate().public_key()) == want:
                return candidate
        return None

    # -- reading ----------------------------------------------------------------------------

    def lineage(self, record: CertificateRecord) -> list[CertificateRecord]:
        """``record`` followed by each successor in turn, the newest last."""
        with self._uow(read_only=True) as uow:
            fresh = uow.lifecycle.lineage.certificate(record.id) if record.id is not None else None
            chain = [fresh or record]
            while len(chain) < _MAX_LINEAGE and chain[-1].id is not None:
                next_id = uow.lifecycle.lineage.successor(chain[-1].id)
                found = uow.lifecycle.lineage.certificate(next_id) if next_id is not None else None
                if found is None:
                    break
                chain.append(found)
        return chain

    def issuing_chain(self, record: CertificateRecord) -> tuple[x509.Certificate, ...]:
        """The CA certificates that go with ``record`` (issuing CA first, root excluded)."""
        return chain_below_root(self._hierarchy(), record.issuer_ca_id)

    def job(self, certificate_id: int) -> RenewalJob | None:
        with self._uow(read_only=True) as uow:
            return uow.lifecycle.jobs.get(certificate_id)

    def summary(self, failing_limit: int = 20) -> tuple[dict[str, int], list[RenewalJob]]:
        """Jobs per state, and the jobs in backoff with their reasons."""
        with self._uow(read_only=True) as uow:
            return dict(uow.lifecycle.jobs.counts()), list(uow.lifecycle.jobs.failing(failing_limit))

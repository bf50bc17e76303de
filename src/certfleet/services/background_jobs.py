"""Every background job ``certfleet serve`` runs, as :class:`~certfleet.lifecycle.scheduler.Job`
values for the one scheduler the composition root builds.

* ``renewal`` (per node, ``[lifecycle] interval_seconds``): notice a CA rotation made
  elsewhere, then renew what is due. Renewal jobs are leased row by row, so every node
  takes a share of them.
* ``campaigns`` (exclusive, ``[lifecycle] interval_seconds``): advance open rotation campaigns.
* ``revocation`` (exclusive, ``[revocation] maintenance_interval``): rebuild stale CRLs,
  rotate OCSP responder certificates, refresh the OCSP responses that were asked for.
* ``notifications.expiry`` (exclusive, hourly): queue expiry notices.
* ``notifications.dispatch`` (exclusive, every 5 s): route and send the notification outbox.
* ``scans`` (per node and per serving process, every second): start the scans this process
  accepted (:mod:`certfleet.services.scan_jobs`; they carry keystore passwords that are never
  stored, so no other node or worker could run them).
* ``nodes.heartbeat`` (per node, every 10 s): this node's version and clock skew against the
  database's clock, for ``certfleet db check`` (:mod:`certfleet.store._nodes`).

* ``audit.siem`` (exclusive, ``[audit.siem] interval_seconds``): stream the audit log after
  the SIEM cursor to the collector (:mod:`certfleet.services.siem`); only when configured.

``[lifecycle] scheduler = false`` leaves out the renewal and campaign jobs, as before.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from certfleet.lifecycle.scheduler import Job
from certfleet.services.authorities import AuthorityService
from certfleet.services.notifications import Notifications
from certfleet.services.renewal import RenewalService
from certfleet.services.revocation import RevocationService
from certfleet.services.rotation import RotationService
from certfleet.services.scan_jobs import ScanQueue
from certfleet.services.siem import SiemSender

__all__ = [
    "ACME_STALLED_INTERVAL",
    "DISPATCH_INTERVAL",
    "EXPIRY_SCAN_INTERVAL",
    "HEARTBEAT_INTERVAL",
    "SCAN_START_INTERVAL",
    "background_jobs",
]

_log = logging.getLogger("certfleet.lifecycle")

# A delivery waits at most this long in the outbox; the expiry scan only has day-sized
# thresholds to notice, so once an hour is plenty.
DISPATCH_INTERVAL = dt.timedelta(seconds=5)
EXPIRY_SCAN_INTERVAL = dt.timedelta(hours=1)
# A submitted scan starts within a second.
SCAN_START_INTERVAL = dt.timedelta(seconds=1)
ACME_STALLED_INTERVAL = dt.timedelta(seconds=30)
# db check calls a node stale after three missed beats.
HEARTBEAT_INTERVAL = dt.timedelta(seconds=10)


def background_jobs(
    *,
    authorities: AuthorityService,
    renewal: RenewalService,
    rotation: RotationService,
    revocation: RevocationService,
    notifications: Notifications,
    scans: ScanQueue,
    acme_stalled: Callable[[], object] | None = None,
    heartbeat: Callable[[], object] | None = None,
    siem: SiemSender | None = None,
) -> list[Job]:
    jobs: list[Job] = []
    lifecycle = renewal.settings
    if lifecycle.scheduler:
        every = dt.timedelta(seconds=lifecycle.interval_seconds)

        def renew_due() -> None:
            authorities.refresh()  # this process's cached issuing CA: every node refreshes its own
            report = renewal.run_due()
            for outcome in report.outcomes:
                _log.info("renewal %s: %s (%s)", outcome.serial, outcome.state.value, outcome.detail)

        def advance_campaigns() -> None:
            authorities.refresh()
            rotation.advance_open()

        jobs += [Job("renewal", every, renew_due, per_node=True), Job("campaigns", every, advance_campaigns)]

    def maintain_revocation() -> None:
        for line in revocation.maintain().errors:  # one failing CA never stops the others
            _log.warning("revocation maintenance: %s", line)

    jobs += [
        Job(
            "revocation",
            dt.timedelta(seconds=revocation.settings.maintenance_interval_seconds),
            maintain_revocation,
        ),
        Job("notifications.expiry", EXPIRY_SCAN_INTERVAL, notifications.expiring_scan),
        Job("notifications.dispatch", DISPATCH_INTERVAL, notifications.dispatch_once),
        Job("scans", SCAN_START_INTERVAL, scans.run_pending, per_node=True, per_process=True),
    ]
    if acme_stalled is not None:
        # ACME orders and challenges a dead process left processing (protocols.acme.recovery):
        # one node at a time, often enough that a client polling them still sees the end.
        jobs.append(Job("acme.stalled", ACME_STALLED_INTERVAL, acme_stalled))
    if heartbeat is not None:
        jobs.append(Job("nodes.heartbeat", HEARTBEAT_INTERVAL, heartbeat, per_node=True))
    if siem is not None:
        # One node sends at a time (the job's lease); the cursor row keeps the order.
        jobs.append(Job("audit.siem", siem.interval, siem.deliver_once))
    return jobs

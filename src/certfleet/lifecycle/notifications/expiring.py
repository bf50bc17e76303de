"""The expiry scan: one ``expiring`` notice per certificate and threshold.

Each active certificate gets a notice for the smallest threshold it has crossed (with the
defaults: 30, 14, 7 and 1 days before notAfter). The event's ``dedup_key`` names the
certificate and threshold, so running the scan again, or on several nodes at once, adds
nothing; a certificate first seen 5 days before expiry gets the 7-day notice, not three.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from certfleet.inventory import MAX_PAGE_SIZE, CertificateQuery, CertificateRecord, Status
from certfleet.lifecycle.notifications.events import (
    EventKind,
    NotifyUnitOfWorkFactory,
    certificate_event,
    emit,
)

__all__ = ["DEFAULT_THRESHOLDS_DAYS", "expiring_scan", "threshold_for"]

DEFAULT_THRESHOLDS_DAYS: tuple[int, ...] = (30, 14, 7, 1)


def threshold_for(remaining: dt.timedelta, thresholds: Sequence[int]) -> int | None:
    """The smallest threshold (days) that ``remaining`` is within, or None."""
    crossed = [t for t in thresholds if remaining <= dt.timedelta(days=t)]
    return min(crossed) if crossed else None


def expiring_scan(
    uow: NotifyUnitOfWorkFactory, now: dt.datetime, thresholds: Sequence[int] = DEFAULT_THRESHOLDS_DAYS
) -> int:
    """Emit the notices due at ``now``; return how many were new."""
    if not thresholds:
        return 0
    horizon = dt.timedelta(days=max(thresholds))
    created = 0
    after_id: int | None = None
    while True:
        query = CertificateQuery(
            expiring_within=horizon, status=Status.ACTIVE, limit=MAX_PAGE_SIZE, after_id=after_id
        )
        with uow() as tx:  # the page and its notices in one transaction
            page = tx.certificates.query(query, now)
            due: dict[str, tuple[CertificateRecord, int, dt.timedelta]] = {}
            for record in page:
                remaining = record.not_after - now
                threshold = threshold_for(remaining, thresholds)
                if threshold is not None and remaining > dt.timedelta(0):
                    due[f"expiring:{record.fingerprint_sha256}:{threshold}"] = (record, threshold, remaining)
            # One look-up per page for the notices already sent: a daily scan mostly finds
            # the same certificates as yesterday, and skips them without building events.
            sent = tx.outbox.existing_keys(list(due))
            for key, (record, threshold, remaining) in due.items():
                if key in sent:
                    continue
                details = {
                    "threshold_days": threshold,
                    "days_left": math.ceil(remaining / dt.timedelta(days=1)),
                }
                event = certificate_event(tx, EventKind.EXPIRING, record, now, details=details, dedup_key=key)
                if emit(tx, event) is not None:
                    created += 1
        if len(page) < MAX_PAGE_SIZE:
            return created
        after_id = page[-1].id

"""Repositories of the lifecycle area: renewal jobs with leases (lineage in ``_lineage``,
campaigns in ``_lifecycle_campaigns``).

Leasing is the one place the two databases differ: PostgreSQL selects with ``FOR UPDATE SKIP
LOCKED`` so concurrent workers take disjoint rows without waiting; SQLite has one writer at a
time (every transaction is ``BEGIN IMMEDIATE``, see ``_database``), so the select and the
conditional update that follows it cannot interleave with another worker's.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import String, exists, func, select, type_coerce, update
from sqlalchemy.orm import Session, aliased

from certfleet.inventory import Source
from certfleet.lifecycle.jobs import (
    OPEN_STATES,
    JobState,
    Lease,
    NewJob,
    PlanCandidate,
    RenewalJob,
    external_reason,
)
from certfleet.lifecycle.planning import RenewalWindow
from certfleet.store._acme_models import AcmeRenewalOverrideRow
from certfleet.store._lifecycle_campaigns import SqlCampaignRepository
from certfleet.store._lifecycle_models import (
    RenewalJobRow,
)
from certfleet.store._lifecycle_rows import from_acme, managed
from certfleet.store._lineage import SqlLineageRepository
from certfleet.store._renewal_plan import (
    begin_bulk_load,
    end_bulk_load,
    plan_in_sqlite,
    roomy_cache,
    unplanned_page,
)
from certfleet.store._sql import skip_locked
from certfleet.store.models import CertificateRow

__all__ = ["SqlLifecycleRepositories"]

_OPEN = [s.value for s in OPEN_STATES]
_MAX_ID = 2**63 - 1


# Skipping rows whose key exists: another node planned them meanwhile. Both dialects have
# ON CONFLICT; attempts and failures start at 0, due_at at the renewal time.
_INSERT_JOBS = (
    "INSERT INTO renewal_jobs (certificate_id, serial, state, renew_at, due_at, planned_at, "
    "attempts, failures, last_error, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, ?) "
    "ON CONFLICT (certificate_id) DO NOTHING"
)


_STATE = {state: state.value for state in JobState}
_RENEW_AT = operator.itemgetter(3)


def _sqlite_stamp(at: dt.datetime) -> str:
    """What ``UtcDateTime`` stores in SQLite: naive UTC text with microseconds, so SQL
    compares these rows with the ORM's by text as it compares any two."""
    if at.tzinfo is not dt.UTC:
        if at.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        at = at.astimezone(dt.UTC)
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return at


def _job(row: RenewalJobRow) -> RenewalJob:
    return RenewalJob(
        certificate_id=row.certificate_id,
        serial=row.serial,
        state=JobState(row.state),
        renew_at=row.renew_at,
        due_at=row.due_at,
        attempts=row.attempts,
        failures=row.failures,
        last_error=row.last_error,
        last_attempt_at=row.last_attempt_at,
        successor_id=row.successor_id,
        lease_owner=row.lease_owner,
        lease_token=row.lease_token,
    )


class SqlRenewalJobRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def next_page(self, after_id: int, limit: int) -> tuple[int, int]:
        return unplanned_page(self._session.connection(), after_id, limit)

    def begin_bulk_plan(self, min_rows: int) -> bool:
        return begin_bulk_load(self._session.connection(), min_rows)

    def end_bulk_plan(self) -> None:
        end_bulk_load(self._session.connection())

    def add_computed(self, after_id: int, upto_id: int, planned_at: dt.datetime) -> int:
        connection = self._session.connection()
        if connection.dialect.name != "sqlite":
            return 0
        return plan_in_sqlite(connection, after_id, upto_id, _sqlite_stamp(planned_at))

    def unplanned(self, after_id: int, limit: int, upto_id: int | None = None) -> Sequence[PlanCandidate]:
        connection = self._session.connection()
        text = connection.dialect.name == "sqlite"

        def utc(column: Any) -> Any:
            # SQLite keeps UtcDateTime as naive UTC text: read the text and parse it here,
            # as the type would, without its two Python wrappers per value.
            return type_coerce(column, String) if text else column

        override = aliased(AcmeRenewalOverrideRow)
        stmt = (
            select(
                CertificateRow.id,
                CertificateRow.serial,
                utc(CertificateRow.not_before),
                utc(CertificateRow.not_after),
                CertificateRow.tags_json,
                from_acme().label("acme"),
                CertificateRow.source,
                utc(override.window_start),
                utc(override.window_end),
            )
            .outerjoin(override, override.serial == CertificateRow.serial)
            .where(
                *managed(),
                CertificateRow.id > after_id,
                CertificateRow.id <= (upto_id if upto_id is not None else _MAX_ID),
                ~exists().where(RenewalJobRow.certificate_id == CertificateRow.id),
            )
            .order_by(CertificateRow.id)
            .limit(limit)
        )
        out: list[PlanCandidate] = []
        append = out.append
        parse, utc_zone = dt.datetime.fromisoformat, dt.UTC
        page = connection.execute(stmt).all()  # one fetchall: iterating fetches row by row
        plain = Source.ISSUED.value
        for cid, serial, not_before, not_after, tags_json, acme, source, start, end in page:
            if text:
                not_before = parse(not_before).replace(tzinfo=utc_zone)
                not_after = parse(not_after).replace(tzinfo=utc_zone)
            # Most certificates have no tags, no ACME order and no override: skip the JSON
            # parse and the window check for them (one comparison instead of microseconds).
            external = (
                None
                if tags_json == "[]" and not acme and source == plain
                else external_reason(json.loads(tags_json), bool(acme), source)
            )
            window = None
            if start is not None and end is not None:
                if text:
                    start, end = parse(start).replace(tzinfo=utc_zone), parse(end).replace(tzinfo=utc_zone)
                window = RenewalWindow(start, end) if end > start else None
            append(PlanCandidate(cid, serial, not_before, not_after, external, window))
        return out

    def latest_certificate_id(self) -> int:
        return self._session.scalar(select(func.max(CertificateRow.id))) or 0

    def add(self, jobs: Sequence[NewJob], planned_at: dt.datetime) -> int:
        # One executemany of driver SQL: the ORM's bulk insert and even Core's per-row
        # parameter processing cost more than the insert itself (a first plan writes a job
        # per certificate). Sorted by renewal time, the rows reach the (state, due_at) index
        # in order, a few leaf pages at a time instead of one random page each.
        if not jobs:
            return 0
        connection = self._session.connection()
        stamp = _sqlite_stamp if connection.dialect.name == "sqlite" else _aware
        mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        planned = stamp(planned_at)
        rows = [
            (cid, serial, _STATE[state], at, at, planned, note, planned)
            for cid, serial, state, at, note in ((j[0], j[1], j[2], stamp(j[3]), j[4]) for j in jobs)
        ]
        rows.sort(key=_RENEW_AT)  # naive UTC text sorts as the time it spells
        if stamp is _sqlite_stamp:
            with roomy_cache(connection):
                result = connection.exec_driver_sql(_INSERT_JOBS, rows)
        else:
            result = connection.exec_driver_sql(_INSERT_JOBS.replace("?", mark), rows)
        count = getattr(result, "rowcount", -1)
        return count if isinstance(count, int) and count >= 0 else len(rows)

    def overridden(self, since: dt.datetime, limit: int) -> Sequence[tuple[RenewalJob, RenewalWindow]]:
        # From the few overrides to the many jobs (by serial), never the other way round.
        windows = {
            serial: RenewalWindow(start, end)
            for serial, start, end in self._session.execute(
                select(
                    AcmeRenewalOverrideRow.serial,
                    AcmeRenewalOverrideRow.window_start,
                    AcmeRenewalOverrideRow.window_end,
                ).where(
                    AcmeRenewalOverrideRow.window_end >= since,
                    AcmeRenewalOverrideRow.window_end > AcmeRenewalOverrideRow.window_start,
                )
            )
        }
        found: list[tuple[RenewalJob, RenewalWindow]] = []
        serials = list(windows)
        for start in range(0, len(serials), 500):
            rows = self._session.scalars(
                select(RenewalJobRow).where(
                    # Through certificates.serial (indexed) to the job's primary key.
                    RenewalJobRow.certificate_id.in_(
                        select(CertificateRow.id).where(
                            CertificateRow.serial.in_(serials[start : start + 500])
                        )
                    ),
                    RenewalJobRow.state.in_([JobState.SCHEDULED.value, JobState.RETRY.value]),
                )
            )
            for row in rows:
                window = windows[row.serial]
                # Outside its window: set (or moved) since the job was planned. This compares
                # times of one row, not the clocks of two nodes.
                if not window.start <= row.renew_at < window.end:
                    found.append((_job(row), window))
            if len(found) >= limit:
                break
        return found[:limit]

    def reschedule(self, certificate_id: int, renew_at: dt.datetime, planned_at: dt.datetime) -> None:
        row = self._session.get(RenewalJobRow, certificate_id)
        if row is None or row.state not in (JobState.SCHEDULED.value, JobState.RETRY.value):
            return
        row.renew_at = renew_at
        row.due_at = renew_at if row.state == JobState.SCHEDULED.value else min(row.due_at, renew_at)
        row.planned_at = planned_at
        row.updated_at = planned_at

    def lease_due(self, now: dt.datetime, lease: Lease, limit: int) -> Sequence[RenewalJob]:
        due = (RenewalJobRow.state.in_(_OPEN), RenewalJobRow.due_at <= now)
        # One ordered index range per state (an IN over states would sort every due row).
        picked: list[tuple[dt.datetime, int]] = []
        for state in _OPEN:
            pick = (
                select(RenewalJobRow.due_at, RenewalJobRow.certificate_id)
                .where(RenewalJobRow.state == state, RenewalJobRow.due_at <= now)
                .order_by(RenewalJobRow.due_at)
                .limit(limit)
            )
            picked += [(at, cid) for at, cid in self._session.execute(skip_locked(self._session, pick))]
        ids = [cid for _, cid in sorted(picked)[:limit]]
        if not ids:
            return []
        self._session.execute(
            update(RenewalJobRow)
            .where(RenewalJobRow.certificate_id.in_(ids), *due)
            .values(
                state=JobState.LEASED.value,
                lease_owner=lease.owner,
                lease_token=lease.token,
                due_at=lease.until,
                attempts=RenewalJobRow.attempts + 1,
                last_attempt_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        rows = self._session.scalars(
            select(RenewalJobRow)
            .where(RenewalJobRow.certificate_id.in_(ids), RenewalJobRow.lease_token == lease.token)
            .order_by(RenewalJobRow.renew_at)
            .execution_options(populate_existing=True)
        )
        return [_job(r) for r in rows]

    def _ours(self, certificate_id: int, token: str, **values: Any) -> bool:
        result = self._session.execute(
            update(RenewalJobRow)
            .where(
                RenewalJobRow.certificate_id == certificate_id,
                RenewalJobRow.lease_token == token,
                RenewalJobRow.state == JobState.LEASED.value,
            )
            .values(lease_token=None, lease_owner=None, **values)
            .execution_options(synchronize_session=False)
        )
        return getattr(result, "rowcount", 0) == 1

    def finish(
        self,
        certificate_id: int,
        token: str,
        state: JobState,
        at: dt.datetime,
        *,
        successor_id: int | None = None,
        reason: str | None = None,
    ) -> bool:
        return self._ours(
            certificate_id,
            token,
            state=state.value,
            successor_id=successor_id,
            last_error=reason,
            updated_at=at,
        )

    def retry(
        self, certificate_id: int, token: str, reason: str, due_at: dt.datetime, at: dt.datetime
    ) -> bool:
        return self._ours(
            certificate_id,
            token,
            state=JobState.RETRY.value,
            failures=RenewalJobRow.failures + 1,
            last_error=reason[:2000],
            due_at=due_at,
            updated_at=at,
        )

    def get(self, certificate_id: int) -> RenewalJob | None:
        row = self._session.get(RenewalJobRow, certificate_id, populate_existing=True)
        return _job(row) if row else None

    def counts(self) -> Mapping[str, int]:
        stmt = select(RenewalJobRow.state, func.count()).group_by(RenewalJobRow.state)
        return {state: n for state, n in self._session.execute(stmt)}

    def failing(self, limit: int) -> Sequence[RenewalJob]:
        stmt = (
            select(RenewalJobRow)
            .where(RenewalJobRow.state == JobState.RETRY.value)
            .order_by(RenewalJobRow.failures.desc(), RenewalJobRow.certificate_id)
            .limit(limit)
        )
        return [_job(r) for r in self._session.scalars(stmt)]


class SqlLifecycleRepositories:
    """The lifecycle repositories over one session."""

    def __init__(self, session: Session) -> None:
        self.jobs = SqlRenewalJobRepository(session)
        self.lineage = SqlLineageRepository(session)
        self.campaigns = SqlCampaignRepository(session)

"""Named-job leases for the scheduler (migration 0017_scheduled_jobs): one row per
background job, holding its next run time, its lease and how its last run went."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Integer, String, Text, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from certfleet.lifecycle.scheduler import JobState
from certfleet.store._database import Database
from certfleet.store._sql import dialect_insert
from certfleet.store.models import Base, UtcDateTime

__all__ = ["ScheduledJobRow", "SqlJobLeases"]


class ScheduledJobRow(Base):
    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_run_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    runs: Mapped[int] = mapped_column(Integer, default=0)


def _state(row: ScheduledJobRow) -> JobState:
    return JobState(
        name=row.name,
        next_run_at=row.next_run_at,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
        last_started_at=row.last_started_at,
        last_finished_at=row.last_finished_at,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        failures=row.failures,
        runs=row.runs,
    )


def _ensure(session: Session, name: str, now: dt.datetime) -> None:
    """The job's row, due now, unless another node made it first."""
    values = {"name": name, "next_run_at": now, "failures": 0, "runs": 0}
    session.execute(dialect_insert(session, ScheduledJobRow).values(values).on_conflict_do_nothing())


class SqlJobLeases:
    """Each call is its own short transaction: a lease is visible to other nodes at once."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def claim(self, name: str, owner: str, now: dt.datetime, until: dt.datetime) -> JobState | None:
        with self._database.session() as session:
            _ensure(session, name, now)
            # One conditional UPDATE: of several nodes, the first to commit wins; the others
            # see the new next_run_at or the live lease and match no row.
            result = session.execute(
                update(ScheduledJobRow)
                .where(
                    ScheduledJobRow.name == name,
                    ScheduledJobRow.next_run_at <= now,
                    or_(ScheduledJobRow.lease_until.is_(None), ScheduledJobRow.lease_until <= now),
                )
                .values(lease_owner=owner, lease_until=until, last_started_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            row = session.get(ScheduledJobRow, name)
            return _state(row) if row is not None else None

    def finish(
        self,
        name: str,
        owner: str | None,
        *,
        started_at: dt.datetime,
        now: dt.datetime,
        next_run_at: dt.datetime,
        error: str | None,
    ) -> JobState:
        with self._database.session() as session:
            _ensure(session, name, now)
            row = session.execute(
                select(ScheduledJobRow).where(ScheduledJobRow.name == name).with_for_update()
            ).scalar_one()
            if owner is not None and row.lease_owner not in (owner, None):
                return _state(row)  # the lease ran out and another node took the job over
            row.next_run_at = next_run_at
            row.lease_owner = None
            row.lease_until = None
            row.last_started_at = started_at
            row.last_finished_at = now
            row.runs += 1
            if error is None:
                row.failures = 0
            else:
                row.failures += 1
                row.last_error = error[:4000]
                row.last_error_at = now
            return _state(row)

    def states(self) -> Sequence[JobState]:
        with self._database.session(read_only=True) as session:
            rows = session.scalars(select(ScheduledJobRow).order_by(ScheduledJobRow.name)).all()
            return [_state(row) for row in rows]

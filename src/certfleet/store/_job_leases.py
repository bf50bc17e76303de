"""Named-job leases for the scheduler (migration 0017_scheduled_jobs): one row per
background job, holding its next run time, its lease and how its last run went."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import BindParameter, Integer, String, Table, Text, and_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.lifecycle.scheduler import JobState
from certfleet.store._database import Database
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


_JOBS = cast(Table, ScheduledJobRow.__table__)
_ROW = select(_JOBS).where(_JOBS.c.name == bindparam("b_name"))
_Insert = Callable[[Table], Any]


def _state(row: Any) -> JobState:
    """The job's row (a statement's RETURNING row or a mapped row) as the scheduler sees it."""
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


def _time(name: str) -> BindParameter[dt.datetime]:
    return bindparam(name, type_=UtcDateTime())


def _claim_statement(insert: _Insert) -> Any:
    """Claim ``b_name`` for ``b_owner`` until ``b_until`` when due at ``b_now`` and no live
    lease holds it; a job seen for the first time gets its row, due now and claimed."""
    now = _time("b_now")
    statement = insert(_JOBS).values(
        name=bindparam("b_name"),
        next_run_at=now,
        lease_owner=bindparam("b_owner"),
        lease_until=_time("b_until"),
        last_started_at=now,
        failures=0,
        runs=0,
    )
    return statement.on_conflict_do_update(
        index_elements=[_JOBS.c.name],
        set_={k: statement.excluded[k] for k in ("lease_owner", "lease_until", "last_started_at")},
        where=and_(
            _JOBS.c.next_run_at <= now, or_(_JOBS.c.lease_until.is_(None), _JOBS.c.lease_until <= now)
        ),
    ).returning(*_JOBS.c)


def _finish_statement(insert: _Insert, *, leased: bool, failed: bool) -> Any:
    """Record ``b_runs`` runs, the last started at ``b_started`` and ended at ``b_now``, and
    release the lease; ``leased``: only while the lease is still ``b_owner``'s or nobody's."""
    now = _time("b_now")
    runs = bindparam("b_runs", type_=Integer())
    values: dict[str, Any] = {
        "name": bindparam("b_name"),
        "next_run_at": _time("b_next"),
        "lease_owner": None,
        "lease_until": None,
        "last_started_at": _time("b_started"),
        "last_finished_at": now,
        "runs": runs,
        "failures": 1 if failed else 0,
    }
    if failed:
        values |= {"last_error": bindparam("b_error"), "last_error_at": now}
    statement = insert(_JOBS).values(values)
    set_: dict[str, Any] = {k: statement.excluded[k] for k in values if k not in ("name", "runs", "failures")}
    set_ |= {"runs": _JOBS.c.runs + runs, "failures": _JOBS.c.failures + 1 if failed else 0}
    owned = or_(_JOBS.c.lease_owner.is_(None), _JOBS.c.lease_owner == bindparam("b_owner"))
    return statement.on_conflict_do_update(
        index_elements=[_JOBS.c.name], set_=set_, where=owned if leased else None
    ).returning(*_JOBS.c)


class SqlJobLeases:
    """Each call is one statement in its own short transaction: a lease is visible to other
    nodes at once. The statements are built once per dialect with bound parameters (a
    statement built per call is compiled and hashed again on every round of every job), and
    each is an upsert with RETURNING: the job's row is made on first use by the same
    statement that claims or finishes it, and the row comes back without a second read."""

    def __init__(self, database: Database) -> None:
        self._database = database
        insert = pg_insert if database.dialect == "postgresql" else sqlite_insert
        self._claim = _claim_statement(insert)
        self._finish = {
            (leased, failed): _finish_statement(insert, leased=leased, failed=failed)
            for leased in (True, False)
            for failed in (True, False)
        }

    def claim(self, name: str, owner: str, now: dt.datetime, until: dt.datetime) -> JobState | None:
        # One conditional upsert: of several nodes, the first to commit wins; the others see
        # the new next_run_at or the live lease (ON CONFLICT DO UPDATE re-reads the row it
        # locked, on PostgreSQL too) and get no row back.
        with self._database.engine.begin() as conn:
            row = conn.execute(
                self._claim, {"b_name": name, "b_owner": owner, "b_now": now, "b_until": until}
            )
            found = row.one_or_none()
        return _state(found) if found is not None else None

    def finish(
        self,
        name: str,
        owner: str | None,
        *,
        started_at: dt.datetime,
        now: dt.datetime,
        next_run_at: dt.datetime,
        error: str | None,
        runs: int = 1,
    ) -> JobState:
        values: dict[str, object] = {
            "b_name": name,
            "b_runs": runs,
            "b_started": started_at,
            "b_now": now,
            "b_next": next_run_at,
        }
        if owner is not None:
            values["b_owner"] = owner
        if error is not None:
            values["b_error"] = error[:4000]
        statement = self._finish[(owner is not None, error is not None)]
        with self._database.engine.begin() as conn:
            found = conn.execute(statement, values).one_or_none()
            if found is None:  # the lease ran out and another node took the job over
                found = conn.execute(_ROW, {"b_name": name}).one()
        return _state(found)

    def states(self) -> Sequence[JobState]:
        with self._database.session(read_only=True) as session:
            rows = session.scalars(select(ScheduledJobRow).order_by(ScheduledJobRow.name)).all()
            return [_state(row) for row in rows]

"""The scheduler's job leases as single statements: a claim or a report makes the job's row
on first use, racing claims leave exactly one holder, and a report counts runs and failures
on the row it returns."""

from __future__ import annotations

import datetime as dt

from certfleet.app import Platform
from certfleet.store._job_leases import SqlJobLeases
from tests.conftest import FakeClock
from tests.store._threads import run_together

SECOND = dt.timedelta(seconds=1)


def test_a_first_claim_makes_the_row_due_now_and_leased(bare_platform: Platform, clock: FakeClock) -> None:
    leases = SqlJobLeases(bare_platform.database)
    now = clock.now()
    claimed = leases.claim("first", "node-a", now, now + 60 * SECOND)
    assert claimed is not None
    assert (claimed.name, claimed.next_run_at, claimed.lease_owner) == ("first", now, "node-a")
    assert (claimed.lease_until, claimed.last_started_at, claimed.runs, claimed.failures) == (
        now + 60 * SECOND,
        now,
        0,
        0,
    )
    # Not due again until it is reported and its next run comes
    assert leases.claim("first", "node-a", now + 61 * SECOND, now + 120 * SECOND) is not None  # lease expired
    assert leases.claim("first", "node-b", now + 62 * SECOND, now + 120 * SECOND) is None


def test_racing_claims_leave_one_holder(bare_platform: Platform, clock: FakeClock) -> None:
    leases = SqlJobLeases(bare_platform.database)
    now = clock.now()
    owners = iter(f"node-{n}" for n in range(8))
    done = run_together(8, lambda: leases.claim("raced", next(owners), now, now + 60 * SECOND))
    won = [state for state in done.results if state is not None]
    assert len(won) == 1
    [row] = [s for s in leases.states() if s.name == "raced"]
    assert row.lease_owner == won[0].lease_owner


def test_reports_count_runs_and_failures_and_a_per_node_report_makes_its_row(
    bare_platform: Platform, clock: FakeClock
) -> None:
    leases = SqlJobLeases(bare_platform.database)
    now = clock.now()
    failed = leases.finish(
        "local", None, started_at=now, now=now + SECOND, next_run_at=now + 9 * SECOND, error="E: x"
    )
    assert (failed.runs, failed.failures, failed.last_error, failed.last_error_at) == (
        1,
        1,
        "E: x",
        now + SECOND,
    )
    assert (failed.lease_owner, failed.next_run_at, failed.last_finished_at) == (
        None,
        now + 9 * SECOND,
        now + SECOND,
    )
    again = leases.finish(
        "local", None, started_at=now, now=now + 2 * SECOND, next_run_at=now, error="E: y" * 3000
    )
    assert (again.runs, again.failures, again.last_error) == (2, 2, ("E: y" * 3000)[:4000])
    healed = leases.finish("local", None, started_at=now, now=now + 3 * SECOND, next_run_at=now, error=None)
    # a success clears the count and keeps the last error for the record
    assert (healed.runs, healed.failures, healed.last_error) == (3, 0, ("E: y" * 3000)[:4000])

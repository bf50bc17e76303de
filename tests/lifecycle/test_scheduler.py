"""The periodic scheduler: jobs on their interval under named database leases, failures
recorded and retried with backoff, a stop that stops, and one run per period across nodes."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from certfleet.app import Platform
from certfleet.errors import InvalidInput
from certfleet.lifecycle.scheduler import Job, JobState, Scheduler, retry_delay
from tests.conftest import FakeClock

SECOND = dt.timedelta(seconds=1)


class Calls:
    """Records each job's runs; ``fail`` makes a job raise."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.failing: set[str] = set()

    def job(self, name: str, seconds: float, *, per_node: bool = False) -> Job:
        def run() -> None:
            self.counts[name] += 1
            if name in self.failing:
                raise RuntimeError(f"{name} is broken")

        return Job(name, dt.timedelta(seconds=seconds), run, per_node=per_node)


def _state(scheduler: Scheduler, name: str) -> JobState:
    [found] = [s for s in scheduler.states() if s.name == name]
    return found


def test_jobs_run_at_their_interval(bare_platform: Platform, clock: FakeClock) -> None:
    calls = Calls()
    scheduler = Scheduler(
        bare_platform.store.job_leases(), clock, [calls.job("fast", 10), calls.job("slow", 60)]
    )
    # Given a new scheduler, every job runs at once
    assert scheduler.tick() == ["fast", "slow"]
    # Then each waits for its own interval
    assert scheduler.tick() == []
    clock.advance(9 * SECOND)
    assert scheduler.tick() == []
    clock.advance(SECOND)
    assert scheduler.tick() == ["fast"]
    clock.advance(50 * SECOND)
    assert scheduler.tick() == ["fast", "slow"]
    assert calls.counts == {"fast": 3, "slow": 2}
    fast = _state(scheduler, "fast")
    assert (fast.runs, fast.failures, fast.last_error, fast.lease_owner) == (3, 0, None, None)
    assert fast.next_run_at == clock.now() + 10 * SECOND


def test_a_failing_job_is_recorded_and_retried_with_backoff_and_the_others_run(
    bare_platform: Platform, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()
    calls.failing.add("broken")
    scheduler = Scheduler(
        bare_platform.store.job_leases(),
        clock,
        [calls.job("broken", 10), calls.job("healthy", 10)],
        max_backoff=35 * SECOND,
    )
    start = clock.now()
    assert scheduler.tick() == ["broken", "healthy"]
    broken = _state(scheduler, "broken")
    assert (broken.failures, broken.last_error, broken.last_error_at) == (
        1,
        "RuntimeError: broken is broken",
        start,
    )
    assert "job broken failed" in caplog.text and "broken is broken" in caplog.text
    # The retries back off: 10 s, 20 s, then capped at 35 s; the healthy job keeps its 10 s
    runs_at = []
    for _ in range(80):
        clock.advance(SECOND)
        if "broken" in scheduler.tick():
            runs_at.append(int((clock.now() - start).total_seconds()))
    assert runs_at == [10, 30, 65]
    assert calls.counts["healthy"] == 9
    assert _state(scheduler, "broken").failures == 4
    # Once it works again, its failure count is cleared and its interval is back
    calls.failing.clear()
    clock.advance(35 * SECOND)
    assert "broken" in scheduler.tick()
    healed = _state(scheduler, "broken")
    assert (healed.failures, healed.last_error) == (0, "RuntimeError: broken is broken")
    assert healed.next_run_at == clock.now() + 10 * SECOND


def test_retry_delay_doubles_up_to_the_cap_or_the_interval() -> None:
    minute = 60 * SECOND
    assert [retry_delay(10 * SECOND, n, minute).total_seconds() for n in (1, 2, 3, 4, 5)] == [
        10,
        20,
        40,
        60,
        60,
    ]
    assert retry_delay(10 * minute, 3, minute) == 10 * minute  # never sooner than the interval


def test_job_names_and_intervals_are_checked() -> None:
    with pytest.raises(InvalidInput, match="positive"):
        Job("x", dt.timedelta(0), lambda: None)
    with pytest.raises(InvalidInput, match="unique"):
        Scheduler(_NoLeases(), FakeClock(), [Job("x", SECOND, lambda: None), Job("x", SECOND, lambda: None)])


class _NoLeases:
    def claim(self, name: str, owner: str, now: dt.datetime, until: dt.datetime) -> JobState | None:
        raise AssertionError("not called")

    def finish(self, *args: object, **kwargs: object) -> JobState:
        raise AssertionError("not called")

    def states(self) -> list[JobState]:
        return []


def test_run_stops_when_asked(bare_platform: Platform, clock: FakeClock) -> None:
    ran = threading.Event()
    scheduler = Scheduler(bare_platform.store.job_leases(), clock, [Job("once", 3600 * SECOND, ran.set)])
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,))
    thread.start()
    try:
        assert ran.wait(30)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert _state(scheduler, "once").runs == 1


def test_running_keeps_the_loop_in_a_thread_for_the_block(bare_platform: Platform, clock: FakeClock) -> None:
    ran = threading.Event()
    scheduler = Scheduler(bare_platform.store.job_leases(), clock, [Job("once", 3600 * SECOND, ran.set)])
    before = {t.name for t in threading.enumerate()}
    with scheduler.running():
        assert ran.wait(30)
        assert "certfleet-scheduler" in {t.name for t in threading.enumerate()} - before
    # the block's end stops the loop and waits for it: no scheduler thread outlives serve
    assert "certfleet-scheduler" not in {t.name for t in threading.enumerate()} - before
    assert _state(scheduler, "once").runs == 1


def _pair(platform: Platform, clock: FakeClock, jobs: Callable[[], list[Job]]) -> list[Scheduler]:
    """Two schedulers (two nodes) on one database."""
    return [Scheduler(platform.store.job_leases(), clock, jobs(), owner=f"node-{n}") for n in ("a", "b")]


def test_two_schedulers_on_one_database_run_each_job_once_per_period(
    bare_platform: Platform, clock: FakeClock
) -> None:
    calls = Calls()
    nodes = _pair(
        bare_platform,
        clock,
        lambda: [calls.job("exclusive", 10), calls.job("local", 10, per_node=True)],
    )
    ran: Counter[str] = Counter()
    for _ in range(6):  # six periods; both nodes tick several times in each
        for _ in range(3):
            for node in nodes:
                ran.update(f"{node.owner}/{name}" for name in node.tick())
        clock.advance(10 * SECOND)
    assert calls.counts["exclusive"] == 6
    assert calls.counts["local"] == 12  # a per-node job runs on every node
    assert ran["node-a/local"] == ran["node-b/local"] == 6


def test_a_live_lease_keeps_another_node_out_until_it_expires(
    bare_platform: Platform, clock: FakeClock
) -> None:
    leases = bare_platform.store.job_leases()
    now = clock.now()
    assert leases.claim("j", "node-a", now, now + 60 * SECOND) is not None
    # node-a died holding it: node-b waits for the lease, then takes the job over
    assert leases.claim("j", "node-b", now + 59 * SECOND, now + 120 * SECOND) is None
    taken = leases.claim("j", "node-b", now + 60 * SECOND, now + 120 * SECOND)
    assert taken is not None and taken.lease_owner == "node-b"
    # node-a's late report changes nothing of node-b's lease
    late = leases.finish(
        "j", "node-a", started_at=now, now=now + 61 * SECOND, next_run_at=now + 70 * SECOND, error=None
    )
    assert (late.lease_owner, late.runs) == ("node-b", 0)


def test_the_platform_schedules_every_background_job(bare_platform: Platform) -> None:
    jobs = {job.name: job for job in bare_platform.scheduler.jobs}
    assert set(jobs) == {
        "renewal",
        "campaigns",
        "revocation",
        "notifications.expiry",
        "notifications.dispatch",
        "scans",
        "nodes.heartbeat",
        "acme.stalled",
    }
    assert not jobs["acme.stalled"].per_node  # one node at a time resolves what a dead one left
    assert jobs["scans"].per_node  # a scan runs on the node that accepted it (its passwords stay there)
    assert jobs["renewal"].per_node  # renewal jobs are leased row by row: every node takes a share
    assert jobs["renewal"].interval == dt.timedelta(seconds=bare_platform.renewal.settings.interval_seconds)
    assert jobs["revocation"].interval == dt.timedelta(
        seconds=bare_platform.revocation.settings.maintenance_interval_seconds
    )


def test_serving_workers_split_the_jobs(bare_platform: Platform) -> None:
    """``serve --workers``: worker 0 runs the platform's whole scheduler; every other worker a
    scheduler restricted to the per-process jobs (the scans it accepted), with the same owner."""
    full = bare_platform.scheduler
    assert {job.name for job in full.jobs if job.per_process} == {"scans"}
    others = full.restricted(lambda job: job.per_process)
    assert [job.name for job in others.jobs] == ["scans"]
    assert others.owner == full.owner
    assert others.tick() == ["scans"]  # per node: no lease to claim
    assert {s.name for s in full.states()} == {"scans"}  # nothing else ran or was claimed


def test_a_per_node_job_that_keeps_succeeding_records_its_runs_once_a_minute(
    bare_platform: Platform, clock: FakeClock
) -> None:
    calls = Calls()
    scheduler = Scheduler(bare_platform.store.job_leases(), clock, [calls.job("local", 1, per_node=True)])
    # Given a per-node job every second: its first run is recorded at once
    assert scheduler.tick() == ["local"]
    first = _state(scheduler, "local")
    assert (first.runs, first.last_finished_at) == (1, clock.now())
    # When it keeps succeeding, the row waits for a minute's runs, then counts them all
    for _ in range(59):
        clock.advance(SECOND)
        assert scheduler.tick() == ["local"]
    assert _state(scheduler, "local") == first
    clock.advance(SECOND)
    assert scheduler.tick() == ["local"]
    assert (_state(scheduler, "local").runs, _state(scheduler, "local").last_finished_at) == (61, clock.now())
    # A failure, and the success after it, are recorded at once
    calls.failing.add("local")
    clock.advance(SECOND)
    scheduler.tick()
    assert (_state(scheduler, "local").runs, _state(scheduler, "local").failures) == (62, 1)
    calls.failing.clear()
    clock.advance(SECOND)
    scheduler.tick()
    assert (_state(scheduler, "local").runs, _state(scheduler, "local").failures) == (63, 0)
    assert calls.counts["local"] == 63

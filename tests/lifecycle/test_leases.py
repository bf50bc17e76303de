"""Leasing renewal jobs in the database, on SQLite and PostgreSQL: each due job to one worker,
fencing tokens, and a crashed worker's jobs due again when its lease expires."""

from __future__ import annotations

import datetime as dt
import secrets
import threading

import pytest

from certfleet.app import Platform
from certfleet.lifecycle.jobs import JobState, Lease
from tests.conftest import FakeClock
from tests.lifecycle.fleet import issue

DAY = dt.timedelta(days=1)


def _lease(clock: FakeClock, seconds: int = 300, owner: str = "w") -> Lease:
    return Lease(owner, secrets.token_hex(16), clock.now() + dt.timedelta(seconds=seconds))


def _plan_due(platform: Platform, clock: FakeClock, count: int) -> list[int]:
    ids = []
    for i in range(count):
        record = issue(platform, f"h{i}.example.test", days=30).record
        assert record.id is not None
        ids.append(record.id)
    planned, _ = platform.renewal.plan()
    assert planned == count
    clock.advance(25 * DAY)  # past two thirds plus the jitter of every one
    return ids


def test_a_due_job_is_leased_once(platform: Platform, clock: FakeClock) -> None:
    ids = _plan_due(platform, clock, 3)
    with platform.store.unit_of_work() as uow:
        first = uow.lifecycle.jobs.lease_due(clock.now(), _lease(clock), 10)
    with platform.store.unit_of_work() as uow:
        second = uow.lifecycle.jobs.lease_due(clock.now(), _lease(clock), 10)
    assert sorted(j.certificate_id for j in first) == ids
    assert all(j.state is JobState.LEASED and j.attempts == 1 for j in first)
    assert second == []


def test_not_due_jobs_are_not_leased(platform: Platform, clock: FakeClock) -> None:
    issue(platform, "early.example.test", days=30)
    platform.renewal.plan()
    clock.advance(15 * DAY)  # half of the lifetime: before two thirds minus the jitter
    with platform.store.unit_of_work() as uow:
        assert uow.lifecycle.jobs.lease_due(clock.now(), _lease(clock), 10) == []


def test_an_expired_lease_makes_the_job_due_again(platform: Platform, clock: FakeClock) -> None:
    [job_id] = _plan_due(platform, clock, 1)
    crashed = _lease(clock, seconds=60, owner="crashed")
    with platform.store.unit_of_work() as uow:
        assert len(uow.lifecycle.jobs.lease_due(clock.now(), crashed, 10)) == 1
    clock.advance(dt.timedelta(seconds=59))
    with platform.store.unit_of_work() as uow:
        assert uow.lifecycle.jobs.lease_due(clock.now(), _lease(clock), 10) == []
    clock.advance(dt.timedelta(seconds=1))
    taker = _lease(clock, owner="taker")
    with platform.store.unit_of_work() as uow:
        [job] = uow.lifecycle.jobs.lease_due(clock.now(), taker, 10)
    assert (job.certificate_id, job.lease_owner, job.attempts) == (job_id, "taker", 2)
    # The crashed worker's late write is fenced off; the new holder's is not.
    with platform.store.unit_of_work() as uow:
        assert not uow.lifecycle.jobs.finish(job_id, crashed.token, JobState.DONE, clock.now())
        assert uow.lifecycle.jobs.finish(job_id, taker.token, JobState.SKIPPED, clock.now(), reason="test")
    with platform.store.unit_of_work() as uow:
        stored = uow.lifecycle.jobs.get(job_id)
    assert stored is not None and stored.state is JobState.SKIPPED and stored.lease_token is None


def test_concurrent_workers_take_disjoint_jobs(platform: Platform, clock: FakeClock) -> None:
    ids = _plan_due(platform, clock, 24)
    taken: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        mine: list[int] = []
        barrier.wait()
        while True:
            with platform.store.unit_of_work() as uow:
                jobs = uow.lifecycle.jobs.lease_due(clock.now(), _lease(clock, owner=name), 2)
            if not jobs:
                break
            mine += [j.certificate_id for j in jobs]
        taken[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [i for mine in taken.values() for i in mine]
    assert sorted(every) == ids  # all leased, none twice
    assert len(taken) == 4


def test_planning_twice_adds_no_second_job(platform: Platform, clock: FakeClock) -> None:
    issue(platform, "once.example.test")
    assert platform.renewal.plan() == (1, 0)
    assert platform.renewal.plan() == (0, 0)


def test_rounds_read_new_certificates_and_a_sweep_finds_the_rest(
    platform: Platform, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from certfleet.services import renewal

    old = issue(platform, "old.example.test").record
    assert platform.renewal.plan() == (1, 0)  # the first round is a full sweep
    # A certificate the rounds cannot see: behind the newest id, without a job (as one from a
    # transaction that committed long after later ids)
    with platform.database.engine.begin() as conn:
        conn.execute(text("DELETE FROM renewal_jobs WHERE certificate_id = :i"), {"i": old.id})
    monkeypatch.setattr(renewal, "_ID_SLACK", 0)
    issue(platform, "new.example.test")
    assert platform.renewal.plan() == (1, 0)  # only the new one
    assert platform.renewal.plan() == (0, 0)
    monkeypatch.setattr(renewal, "FULL_SWEEP_SECONDS", 0.0)
    assert platform.renewal.plan() == (1, 0)  # the sweep
    assert platform.renewal.job(old.id or 0) is not None

"""Automatic renewal under a fake clock, on SQLite and PostgreSQL: certificates renew
themselves before they expire, exactly once, keeping their key, names, profile, team and tags;
failures back off; a crashed worker's job and its half-done renewal are picked up again."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import secrets

import pytest
from cryptography.hazmat.primitives import serialization

from certfleet.app import Platform
from certfleet.inventory import Status
from certfleet.lifecycle.jobs import JobState, Lease
from certfleet.x509 import KeyType, generate_private_key
from tests.conftest import FakeClock
from tests.lifecycle.fleet import certificates_named, issue, job_row, successors
from tests.services.snapshot import audit_actions, rows

DAY = dt.timedelta(days=1)


def _spki(record_der: bytes) -> bytes:
    from cryptography import x509

    return (
        x509.load_der_x509_certificate(record_der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _events(platform: Platform, kind: str) -> list[dict[str, object]]:
    found = rows(platform.database, "SELECT payload_json FROM notification_events WHERE kind = :k", k=kind)
    return [json.loads(r[0]) for r in found]


def test_certificates_renew_themselves_before_expiry(platform: Platform, clock: FakeClock) -> None:
    # Given three certificates of 30 days and one of 5 days
    fleet = [
        issue(platform, f"app{i}.example.test", days=30, team="web", tags=("prod",)).record for i in range(3)
    ]
    short = issue(platform, "short.example.test", days=5).record
    # When the scheduler runs every six hours for 100 days of fake time
    renewed_at: dict[str, dt.datetime] = {}
    for _ in range(400):
        clock.advance(dt.timedelta(hours=6))
        for outcome in platform.renewal.run_due().outcomes:
            assert outcome.state is JobState.DONE, outcome.detail
            renewed_at[outcome.serial] = clock.now()
    # Then every certificate was renewed before it expired, within its renewal band
    for record in [*fleet, short]:
        lineage = platform.renewal.lineage(record)
        assert len(lineage) >= 3, f"{record.sans} renewed {len(lineage) - 1} times"
        for old, new in itertools.pairwise(lineage):
            lifetime = old.not_after - old.not_before
            fraction = 0.5 if lifetime < 10 * DAY else 2 / 3
            at = renewed_at[old.serial]
            assert at < old.not_after
            assert (
                old.not_before + lifetime * (fraction - 0.06)
                <= at
                <= old.not_before + lifetime * (fraction + 0.06)
            )
            # same key, names, profile, lifetime, team and tags; the old one superseded
            assert _spki(new.der) == _spki(old.der)
            assert (new.sans, new.common_name, new.profile, new.team, new.tags) == (
                old.sans,
                old.common_name,
                old.profile,
                old.team,
                old.tags,
            )
            assert new.not_after - new.not_before == lifetime
            assert new.not_before >= old.not_before
        assert [r.status for r in lineage[:-1]] == [Status.SUPERSEDED] * (len(lineage) - 1)
        # exactly once: every certificate of the name is in the one lineage chain
        assert {r.id for r in certificates_named(platform, record.sans[0])} == {r.id for r in lineage}
    renewed = _events(platform, "renewed")
    assert len(renewed) == len(renewed_at)
    assert all(e["details"]["kind"] == "renewal" for e in renewed)  # type: ignore[index]
    assert audit_actions(platform.database).count("certificate.renewal") == len(renewed_at)


def test_nothing_renews_before_its_time(platform: Platform, clock: FakeClock) -> None:
    record = issue(platform, "calm.example.test", days=90).record
    clock.advance(50 * DAY)  # 0.56 of the lifetime: below 2/3 minus the jitter
    report = platform.renewal.run_due()
    assert report.planned == 1 and report.outcomes == []
    assert job_row(platform, record)["state"] == "scheduled"
    assert platform.renewal.lineage(record) == [record]


def test_an_ari_override_moves_the_renewal_to_now(platform: Platform, clock: FakeClock) -> None:
    record = issue(platform, "urgent.example.test", days=90).record
    platform.renewal.run_due()  # planned for day 60 or so
    clock.advance(DAY)
    # An operator's "renew now" (the ACME server's override table, RFC 9773)
    platform.acme.renewal_info.renew_now([record.serial], actor="test")
    clock.advance(dt.timedelta(hours=2))  # past the override window
    report = platform.renewal.run_due()
    assert report.rescheduled == 1
    assert [o.state for o in report.outcomes] == [JobState.DONE]
    assert len(platform.renewal.lineage(record)) == 2


def test_certificates_renewed_by_their_own_clients_are_left_alone(
    platform: Platform, clock: FakeClock
) -> None:
    agent = issue(platform, "agent.example.test", tags=("agent:web-1",)).record
    manual = issue(platform, "manual.example.test", tags=("no-auto-renew",)).record
    clock.advance(29 * DAY)
    assert platform.renewal.run_due().outcomes == []
    for record in (agent, manual):
        job = job_row(platform, record)
        assert job["state"] == "external" and job["last_error"]
        assert platform.renewal.lineage(record) == [record]


def test_failures_back_off_1_10_100_minutes_then_daily_with_the_reason(
    platform: Platform, clock: FakeClock
) -> None:
    # Given a certificate whose key was since revoked for keyCompromise under another certificate
    key = generate_private_key(KeyType.EC_P256)
    record = issue(platform, "blocked.example.test", key=key, days=30).record
    twin = issue(platform, "twin.example.test", key=key, days=30).record
    platform.revocation.revoke(twin.serial, "keyCompromise", actor="test")
    clock.advance(25 * DAY)
    attempts_at: list[dt.datetime] = []
    # When the scheduler runs every 30 seconds for three hours, then every hour for three days
    for step, count in ((dt.timedelta(seconds=30), 360), (dt.timedelta(hours=1), 72)):
        for _ in range(count):
            clock.advance(step)
            for outcome in platform.renewal.run_due().outcomes:
                assert outcome.state is JobState.RETRY
                assert "keyCompromise" in outcome.detail
                attempts_at.append(clock.now())
    # Then the attempts came 1, 10 and 100 minutes apart, then daily
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
    minute = dt.timedelta(minutes=1)
    assert minute <= gaps[0] < minute + dt.timedelta(seconds=31)
    assert 10 * minute <= gaps[1] < 10 * minute + dt.timedelta(seconds=31)
    assert 100 * minute <= gaps[2] < 100 * minute + dt.timedelta(seconds=31)
    assert all(DAY <= g < DAY + dt.timedelta(hours=1) for g in gaps[3:]) and len(gaps[3:]) >= 2
    job = job_row(platform, record)
    assert job["state"] == "retry" and job["failures"] == len(attempts_at)
    assert "keyCompromise" in job["last_error"]
    assert platform.renewal.lineage(record) == [record]
    assert len(_events(platform, "renewal-failed")) == len(attempts_at)
    counts, failing = platform.renewal.summary()
    assert counts["retry"] == 1 and failing[0].serial == record.serial


def test_a_crashed_workers_job_is_renewed_once_after_its_lease(platform: Platform, clock: FakeClock) -> None:
    record = issue(platform, "crash.example.test", days=30).record
    platform.renewal.plan()
    clock.advance(25 * DAY)
    assert record.id is not None
    # A worker leased the job and died
    dead = Lease("dead:1:x", secrets.token_hex(16), clock.now() + dt.timedelta(minutes=5))
    with platform.store.unit_of_work() as uow:
        assert len(uow.lifecycle.jobs.lease_due(clock.now(), dead, 10)) == 1
    clock.advance(dt.timedelta(minutes=4))
    assert platform.renewal.run_due().outcomes == []  # still leased
    clock.advance(dt.timedelta(minutes=1))
    [outcome] = platform.renewal.run_due().outcomes
    assert outcome.state is JobState.DONE
    assert len(successors(platform, record)) == 1
    assert job_row(platform, record)["attempts"] == 2


def test_a_replacement_issued_before_the_crash_is_adopted_not_issued_again(
    platform: Platform, clock: FakeClock
) -> None:
    key = generate_private_key(KeyType.EC_P256)
    record = issue(platform, "half.example.test", key=key, days=30, team="web").record
    platform.renewal.plan()
    clock.advance(25 * DAY)
    dead = Lease("dead:1:x", secrets.token_hex(16), clock.now() + dt.timedelta(minutes=5))
    with platform.store.unit_of_work() as uow:
        uow.lifecycle.jobs.lease_due(clock.now(), dead, 10)
    # The dead worker had issued the replacement (same key, names) but not recorded lineage
    orphan = issue(platform, "half.example.test", key=key, days=30, team="web").record
    clock.advance(dt.timedelta(minutes=6))
    [outcome] = platform.renewal.run_due().outcomes
    assert outcome.state is JobState.DONE
    assert outcome.successor_serial == orphan.serial
    assert [r.id for r in certificates_named(platform, "half.example.test")] == [record.id, orphan.id]


def test_a_revoked_certificate_is_not_renewed(platform: Platform, clock: FakeClock) -> None:
    record = issue(platform, "gone.example.test", days=30).record
    platform.renewal.plan()
    platform.revocation.revoke(record.serial, "cessationOfOperation", actor="test")
    clock.advance(25 * DAY)
    [outcome] = platform.renewal.run_due().outcomes
    assert outcome.state is JobState.SKIPPED and "revoked" in outcome.detail
    assert successors(platform, record) == []


@pytest.mark.parametrize("workers", [2])
def test_two_workers_renew_each_certificate_exactly_once(
    platform: Platform, clock: FakeClock, workers: int
) -> None:
    import threading

    fleet = [issue(platform, f"w{i}.example.test", days=30).record for i in range(12)]
    clock.advance(25 * DAY)
    from certfleet.services.renewal import RenewalService

    services = [
        RenewalService(
            platform.store.unit_of_work,
            platform.issuance,
            platform.authorities.hierarchy,
            clock,
            platform.renewal.settings,
        )
        for _ in range(workers)
    ]
    done: list[str] = []
    threads = [
        threading.Thread(target=lambda s=s: done.extend(o.serial for o in s.run_due().outcomes))
        for s in services
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(done) == sorted(r.serial for r in fleet)
    for record in fleet:
        assert len(successors(platform, record)) == 1
        assert len(certificates_named(platform, record.sans[0])) == 2

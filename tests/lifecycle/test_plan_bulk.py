"""Planning an inventory in bulk, on SQLite and PostgreSQL: every managed certificate gets the
job the planning rules give it (and nothing else gets one), across page boundaries, and a page
costs the same few statements however many certificates, and of which kinds, it holds."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import pytest
from sqlalchemy import event

from certfleet.app import Platform
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.jobs import JobState, Lease, external_reason
from certfleet.lifecycle.planning import RenewalWindow, renewal_time
from certfleet.services import renewal
from certfleet.store._acme_models import AcmeRenewalOverrideRow
from tests.conftest import FakeClock
from tests.lifecycle.fleet import issue

DAY = dt.timedelta(days=1)


def _window(platform: Platform, serial: str) -> RenewalWindow:
    with platform.store.unit_of_work(read_only=True) as uow:
        row = uow.session.get(AcmeRenewalOverrideRow, serial)
        assert row is not None
        return RenewalWindow(row.window_start, row.window_end)


def _expected(record: CertificateRecord, window: RenewalWindow | None = None) -> dict[str, Any]:
    external = external_reason(record.tags, False, record.source)
    at = renewal_time(record.not_before, record.not_after, record.serial, window)
    return {
        "serial": record.serial,
        "state": JobState.SCHEDULED if external is None else JobState.EXTERNAL,
        "renew_at": at,
        "due_at": at,
        "attempts": 0,
        "failures": 0,
        "last_error": external,
        "lease_token": None,
    }


def _job(platform: Platform, record: CertificateRecord) -> dict[str, Any] | None:
    job = platform.renewal.job(record.id or 0)
    if job is None:
        return None
    fields = ("serial", "state", "renew_at", "due_at", "attempts", "failures", "last_error", "lease_token")
    return {name: getattr(job, name) for name in fields}


def test_a_mixed_inventory_gets_the_jobs_the_rules_give_it_across_pages(
    platform: Platform, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an inventory with a job already leased, then certificates of every kind
    leased = issue(platform, "leased.example.test", days=30).record
    assert platform.renewal.plan() == (1, 0)
    lease = Lease("w", secrets.token_hex(16), clock.now() + dt.timedelta(minutes=5))
    clock.advance(25 * DAY)
    with platform.store.unit_of_work() as uow:
        [held] = uow.lifecycle.jobs.lease_due(clock.now(), lease, 10)
    plain = issue(platform, "plain.example.test", days=90).record
    short = issue(platform, "short.example.test", days=5).record
    agent = issue(platform, "agent.example.test", tags=("agent:web-1",)).record
    manual = issue(platform, "manual.example.test", tags=("team-x", "no-auto-renew")).record
    server = issue(platform, "server.example.test", tags=("certfleet-server",)).record
    urgent = issue(platform, "urgent.example.test", days=90).record
    platform.acme.renewal_info.renew_now([urgent.serial], actor="test")
    revoked = issue(platform, "revoked.example.test").record
    platform.revocation.revoke(revoked.serial, "cessationOfOperation", actor="test")
    tail = [issue(platform, f"t{i}.example.test", days=7 + 30 * i).record for i in range(4)]

    # When a full sweep plans them three at a time
    monkeypatch.setattr(renewal, "_PAGE", 3)
    monkeypatch.setattr(renewal, "FULL_SWEEP_SECONDS", 0.0)
    planned, _ = platform.renewal.plan()

    # Then each managed certificate has exactly the job the rules give it
    fresh = [plain, short, agent, manual, server, *tail]
    assert planned == len(fresh) + 1
    for record in fresh:
        assert _job(platform, record) == _expected(record), record.common_name
    assert _job(platform, urgent) == _expected(urgent, _window(platform, urgent.serial))
    assert _job(platform, revoked) is None
    # and the job a worker holds is left as it was
    assert platform.renewal.job(leased.id or 0) == held
    assert platform.renewal.plan() == (0, 0)


def test_a_page_costs_the_same_statements_whatever_it_holds(
    platform: Platform, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scheduled and external jobs alternate: a writer grouping rows by shape would issue a
    # statement per change of kind.
    def fleet(start: int, count: int) -> None:
        for i in range(start, start + count):
            issue(platform, f"s{i}.example.test", tags=("agent:a",) if i % 2 else ())

    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    monkeypatch.setattr(renewal, "FULL_SWEEP_SECONDS", 0.0)
    fleet(0, 3)
    event.listen(platform.database.engine, "before_cursor_execute", count)
    try:
        assert platform.renewal.plan() == (3, 0)
        few = len(statements)
        fleet(3, 9)
        statements.clear()
        assert platform.renewal.plan() == (9, 0)
        many = len(statements)
    finally:
        event.remove(platform.database.engine, "before_cursor_execute", count)
    assert many == few
    # one INSERT ... SELECT for the plain certificates (computed in SQLite), one executemany
    # for the rest (every certificate, on PostgreSQL)
    inserts = [s for s in statements if "INSERT INTO RENEWAL_JOBS" in s.upper()]
    assert len(inserts) == (2 if platform.database.engine.dialect.name == "sqlite" else 1)


def _due_index(platform: Platform) -> list[str]:
    """The (state, due_at) index of renewal_jobs as the database lists it (SQLite)."""
    with platform.database.engine.connect() as conn:
        return [
            row[0]
            for row in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'ix_renewal_jobs_state_due'"
            )
        ]


def test_a_first_plan_of_a_large_inventory_builds_the_due_index_once_after_the_load(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an inventory of certificates of every kind and no job yet, large enough (here:
    # five) to be loaded in bulk
    records = [issue(platform, f"b{i}.example.test", days=7 + 40 * i).record for i in range(4)]
    records.append(issue(platform, "agent.example.test", tags=("agent:web-1",)).record)
    monkeypatch.setattr(renewal, "BULK_PLAN_MIN", 5)
    monkeypatch.setattr(renewal, "_PAGE", 2)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(" ".join(sql.split()).upper())

    # When it is planned, two certificates a page
    event.listen(platform.database.engine, "before_cursor_execute", seen)
    try:
        assert platform.renewal.plan() == (5, 0)
    finally:
        event.remove(platform.database.engine, "before_cursor_execute", seen)

    # Then every certificate has the job the rules give it
    for record in records:
        assert _job(platform, record) == _expected(record)
    if platform.database.engine.dialect.name != "sqlite":
        assert not any("INDEX" in s for s in statements)  # PostgreSQL: no bulk mode
        return
    # and on SQLite the index was dropped before the first page and built after the last
    index_work = [s.split(" ON ")[0] for s in statements if "INDEX" in s]
    assert index_work == [
        "DROP INDEX IF EXISTS IX_RENEWAL_JOBS_STATE_DUE",
        "CREATE INDEX IF NOT EXISTS IX_RENEWAL_JOBS_STATE_DUE",
    ]
    pages = [i for i, s in enumerate(statements) if "INSERT INTO RENEWAL_JOBS" in s]
    dropped = next(i for i, s in enumerate(statements) if s.startswith("DROP INDEX"))
    built = next(i for i, s in enumerate(statements) if s.startswith("CREATE INDEX"))
    assert dropped < pages[0] and built > pages[-1]
    assert _due_index(platform) == ["CREATE INDEX ix_renewal_jobs_state_due ON renewal_jobs (state, due_at)"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_load_cut_short_gets_its_index_back_at_the_next_full_sweep(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a planner killed in the middle of a bulk load: the index dropped, some jobs in
    planned = issue(platform, "planned.example.test").record
    monkeypatch.setattr(renewal, "FULL_SWEEP_SECONDS", 0.0)
    assert platform.renewal.plan() == (1, 0)
    with platform.database.engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_renewal_jobs_state_due")
    later = issue(platform, "later.example.test").record
    # When the next full sweep runs
    assert platform.renewal.plan() == (1, 0)
    # Then the index is back, and planning went on as usual
    assert _due_index(platform) == ["CREATE INDEX ix_renewal_jobs_state_due ON renewal_jobs (state, due_at)"]
    assert _job(platform, planned) == _expected(planned)
    assert _job(platform, later) == _expected(later)

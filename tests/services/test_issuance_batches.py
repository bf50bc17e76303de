"""Group commit: concurrent issuance shares transactions, and keeps every guarantee of one
certificate at a time (serial before signing, inventory row, chained audit entry, event)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import event

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.errors import CertfleetError
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.issuance import ClaimResult, IssuanceLedger, IssuedEntry, SerialClaim
from certfleet.lifecycle.notifications.events import Event
from certfleet.revocation import KeyBlocked, spki_sha256
from certfleet.services import IssuanceResult, IssuanceService
from certfleet.services._group_commit import GroupCommitter
from certfleet.x509 import KeyType, generate_private_key
from tests.conftest import FakeClock, make_platform
from tests.services.snapshot import rows

WAIT_SECONDS = 30  # a deadline for the waits below, never a pace


def _request(name: str) -> IssuanceRequest:
    return IssuanceRequest("tls-server", generate_private_key(KeyType.EC_P256).public_key(), (name,))


def _wait_until(condition: Callable[[], bool]) -> None:
    """Poll an observable state (callers queued behind a commit) up to a deadline."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "callers never queued"
        time.sleep(0.001)


class _HeldLedger:
    """The real ledger, whose first serial or record batch waits until ``followers`` more
    callers are queued behind it: the moment requests "arrive together", made certain."""

    def __init__(self, inner: IssuanceLedger, followers: int, *, phase: str) -> None:
        self.inner = inner
        self.followers = followers
        self.phase = phase
        self.service: IssuanceService | None = None
        self.batch_sizes: dict[str, list[int]] = {"claims": [], "records": []}
        self.poison: str | None = None  # a SAN whose record batch write fails

    def _hold(self, phase: str) -> None:
        assert self.service is not None
        if self.phase == phase and len(self.batch_sizes[phase]) == 1:
            committer = self.service._claims if phase == "claims" else self.service._records
            _wait_until(lambda: committer.pending >= self.followers)

    def claim_serials(self, claims: Sequence[SerialClaim]) -> Sequence[ClaimResult]:
        self.batch_sizes["claims"].append(len(claims))
        self._hold("claims")
        return self.inner.claim_serials(claims)

    def caused_by_items(self, error: BaseException) -> bool:
        return self.inner.caused_by_items(error)

    def record_issued(self, entries: Sequence[IssuedEntry]) -> Sequence[CertificateRecord]:
        self.batch_sizes["records"].append(len(entries))
        self._hold("records")

        def broken(record: CertificateRecord) -> Event:
            raise OSError(f"cannot write the event of {record.sans[0]}")

        return self.inner.record_issued(
            [IssuedEntry(e.record, e.audit, broken) if self.poison in e.record.sans else e for e in entries]
        )


def _service(platform: Platform, ledger: _HeldLedger) -> IssuanceService:
    service = IssuanceService(
        platform.store.unit_of_work,
        platform.authorities.issuing_authority,
        platform.clock,
        ledger=ledger,
        policy=platform.policy,
    )
    ledger.service = service
    return service


def _issue_all(
    service: IssuanceService, requests: Sequence[IssuanceRequest]
) -> list[IssuanceResult | CertfleetError | OSError]:
    outcomes: list[IssuanceResult | CertfleetError | OSError | None] = [None] * len(requests)

    def one(index: int) -> None:
        try:
            outcomes[index] = service.issue(requests[index], actor=f"client-{index}", team="web")
        except (CertfleetError, OSError) as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


def _issued(platform: Platform) -> dict[str, tuple[str, str | None]]:
    return {
        r[0]: (r[1], r[2])
        for r in rows(platform.database, "SELECT serial, state, fingerprint_sha256 FROM serials")
    }


def test_sixteen_concurrent_requests_share_transactions_and_all_are_recorded(platform: Platform) -> None:
    ledger = _HeldLedger(platform.store.issuance_ledger(), followers=15, phase="claims")
    service = _service(platform, ledger)
    audit_before = len(list(platform.audit.entries()))

    results = _issue_all(service, [_request(f"host{i}.example.com") for i in range(16)])

    assert all(isinstance(r, IssuanceResult) for r in results)
    issued = [r for r in results if isinstance(r, IssuanceResult)]
    # the fifteen that arrived while the first serial was being committed shared one transaction
    assert ledger.batch_sizes["claims"] == [1, 15]
    assert service.transactions < 2 * 16
    serials = {r.record.serial for r in issued}
    assert len(serials) == 16
    assert {r.record.id for r in issued} == {
        r[0] for r in rows(platform.database, "SELECT id FROM certificates")
    }
    states = _issued(platform)
    for result in issued:
        assert states[result.record.serial] == ("issued", result.record.fingerprint_sha256)
        assert platform.inventory.find(result.record.serial) == result.record
    entries = list(platform.audit.entries())[audit_before:]
    assert sorted(e.details["fingerprint_sha256"] for e in entries) == sorted(
        r.record.fingerprint_sha256 for r in issued
    )
    assert {e.action for e in entries} == {"certificate.issued"}
    assert platform.audit.verify().ok
    events = rows(platform.database, "SELECT subject FROM notification_events WHERE kind = 'issued'")
    assert sorted(e[0] for e in events) == sorted(serials)


def test_a_blocked_key_in_a_batch_is_refused_alone(platform: Platform, clock: FakeClock) -> None:
    ledger = _HeldLedger(platform.store.issuance_ledger(), followers=7, phase="claims")
    service = _service(platform, ledger)
    requests = [_request(f"host{i}.example.com") for i in range(8)]
    with platform.store.unit_of_work() as uow:  # revoked for keyCompromise earlier
        uow.blocked_keys.block(spki_sha256(requests[5].public_key), "0badc0de", clock.now())

    results = _issue_all(service, requests)

    assert ledger.batch_sizes["claims"][:2] == [1, 7]
    assert isinstance(results[5], KeyBlocked)
    ok = [r for i, r in enumerate(results) if i != 5]
    assert all(isinstance(r, IssuanceResult) for r in ok)
    assert len(_issued(platform)) == 7  # no serial for the refused one
    actions = [e.action for e in platform.audit.entries()]
    assert actions.count("certificate.issued") == 7
    assert actions.count("certificate.refused") == 1
    assert platform.audit.verify().ok


def test_a_write_that_fails_for_one_record_of_a_batch_fails_only_that_request(platform: Platform) -> None:
    ledger = _HeldLedger(platform.store.issuance_ledger(), followers=7, phase="records")
    ledger.poison = "host3.example.com"
    service = _service(platform, ledger)

    results = _issue_all(service, [_request(f"host{i}.example.com") for i in range(8)])

    assert 7 in ledger.batch_sizes["records"], "seven records were committed together first"
    failed = results[3]
    assert isinstance(failed, OSError) and "host3.example.com" in str(failed)
    issued = [r for r in results if isinstance(r, IssuanceResult)]
    assert len(issued) == 7
    states = _issued(platform)
    assert sorted(s for s, _ in states.values()) == ["issued"] * 7 + ["reserved"]  # its serial stays
    assert rows(platform.database, "SELECT count(*) FROM certificates") == [(7,)]
    assert [e.action for e in platform.audit.entries()].count("certificate.issued") == 7
    assert platform.audit.verify().ok


def test_two_processes_issuing_at_once_keep_one_chain(
    platform: Platform, data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    # Two platforms on one database stand for two `serve` workers: each has its own engine,
    # pool and group committers, so only the database can order their audit appends.
    other = make_platform(data_dir, db_url, clock)
    try:
        start = threading.Barrier(2)
        outcomes: dict[str, list[IssuanceResult | CertfleetError | OSError]] = {}

        def worker(name: str, service: IssuanceService) -> None:
            start.wait()
            outcomes[name] = _issue_all(service, [_request(f"{name}{i}.example.com") for i in range(6)])

        threads = [
            threading.Thread(target=worker, args=("a", platform.issuance)),
            threading.Thread(target=worker, args=("b", other.issuance)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.close()
    assert all(isinstance(r, IssuanceResult) for rs in outcomes.values() for r in rs)
    assert rows(platform.database, "SELECT count(*) FROM certificates") == [(12,)]
    verdict = platform.audit.verify()
    assert verdict.ok, verdict.reason
    assert [e.action for e in platform.audit.entries()].count("certificate.issued") == 12


def test_an_unchanged_policy_and_blocked_keys_cost_no_transaction_of_their_own(
    platform: Platform, clock: FakeClock
) -> None:
    platform.policy.apply("rules:\n  - name: strong-keys\n    key_types: [ec-p256]\n", source="p", actor="t")
    with platform.store.unit_of_work() as uow:
        uow.blocked_keys.block("ab" * 32, "0badc0de", clock.now())
    platform.issuance.issue(_request("warm.example.com"), actor="t")  # the policy is cached now
    begun: list[object] = []

    def count(connection: object) -> None:
        begun.append(connection)

    event.listen(platform.database.engine, "begin", count)
    try:
        for i in range(5):
            platform.issuance.issue(_request(f"host{i}.example.com"), actor="t")
    finally:
        event.remove(platform.database.engine, "begin", count)
    # the serial's transaction (which reads the policy version and the blocked keys) and the
    # record's: nothing else touches the database
    assert len(begun) == 2 * 5


def test_a_lone_caller_commits_at_once_and_errors_reach_only_their_caller() -> None:
    seen: list[list[int]] = []

    def commit(batch: Sequence[int]) -> list[int]:
        seen.append(list(batch))
        if 13 in batch:
            raise ValueError("13 is refused")
        return [n * 2 for n in batch]

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    assert committer.submit(4) == 8  # no timer, no second caller needed
    with pytest.raises(ValueError, match="13 is refused"):
        committer.submit(13)
    assert seen == [[4], [13]]


def test_an_error_no_item_caused_fails_its_batch_once_not_item_by_item() -> None:
    """A database locked by another process or unreachable: retried item by item, each caller
    would wait out the same outage again (N+1 waits for a batch of N)."""
    seen: list[list[int]] = []
    leader_in, release = threading.Event(), threading.Event()

    def commit(batch: Sequence[int]) -> list[int]:
        seen.append(list(batch))
        if batch == [0]:
            leader_in.set()
            release.wait(30)
            return [0]
        raise ConnectionError("the database is unavailable")

    committer: GroupCommitter[int, int] = GroupCommitter(
        commit, isolate=lambda error: not isinstance(error, ConnectionError)
    )
    outcomes: dict[int, object] = {}

    def call(n: int) -> None:
        try:
            outcomes[n] = committer.submit(n)
        except ConnectionError as exc:
            outcomes[n] = exc

    callers = [threading.Thread(target=call, args=(n,)) for n in range(4)]
    callers[0].start()
    assert leader_in.wait(30)
    for caller in callers[1:]:
        caller.start()
    _wait_until(lambda: committer.pending == 3)  # queued behind the leader's commit
    release.set()
    for caller in callers:
        caller.join(30)
    assert seen == [[0], [1, 2, 3]]
    assert outcomes[0] == 0
    assert all(isinstance(outcomes[n], ConnectionError) for n in (1, 2, 3))

"""EST credentials in the store: the per-request reader (one DBAPI statement) returns what
the repository stored, revocation included, on SQLite and PostgreSQL; on a SQLite file the
request threads read through connections of their own, never the pool."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import event

from certfleet.access import EstCredential
from certfleet.app import Platform
from certfleet.store._est import SqlEstCredentialReader
from tests.conftest import FakeClock, make_platform
from tests.store._threads import run_together


def test_the_reader_returns_the_stored_credential_and_sees_its_revocation_at_once(platform: Platform) -> None:
    minted = platform.est.create_credential(
        "iot", profile="tls-client", names=["*.iot.example.test"], actor="t"
    )
    reader = SqlEstCredentialReader(platform.database)
    assert reader.get(minted.record.id) == minted.record
    assert reader.get("000000000000") is None
    platform.est.revoke_credential(minted.record.username, actor="t")
    revoked = reader.get(minted.record.id)
    assert revoked is not None and revoked.revoked_at == platform.clock.now()
    assert [c.revoked_at for c in platform.est.list_credentials()] == [revoked.revoked_at]


def test_many_request_threads_read_a_credential_without_the_pool_on_a_sqlite_file(
    platform: Platform,
) -> None:
    # Through the pool (5 connections and 10 overflow on SQLite), 32 request threads queued
    # for checkouts and opened and closed overflow connections on every burst: wrk -c64
    # made EST enrolment slower than REST issuance, whose token reader never used the pool.
    minted = platform.est.create_credential("iot", actor="t")
    reader = SqlEstCredentialReader(platform.database)
    checkouts: list[int] = []

    def checked_out(*_: Any) -> None:
        checkouts.append(threading.get_ident())

    event.listen(platform.database.engine, "checkout", checked_out)
    try:
        together = run_together(32, lambda: reader.get(minted.record.id))
    finally:
        event.remove(platform.database.engine, "checkout", checked_out)
    assert together.results == [minted.record] * 32
    on_request_threads = [ident for ident in checkouts if ident in together.idents]
    if platform.database.dialect == "sqlite":
        assert on_request_threads == []
    else:  # PostgreSQL: a network round trip on a pooled connection, one per read
        assert len(on_request_threads) == 32


def test_a_revocation_by_another_node_is_seen_by_a_thread_that_read_the_credential_before(
    platform: Platform, data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    # A connection kept by the reading thread must not keep a read snapshot from before the
    # revocation: the next request after it is refused, on every worker and node.
    minted = platform.est.create_credential("iot", actor="t")
    reader = SqlEstCredentialReader(platform.database)
    other = make_platform(data_dir, db_url, clock)  # another worker or node, same database
    try:
        seen: list[EstCredential | None] = []
        first_read, revoked = threading.Event(), threading.Event()

        def request_thread() -> None:
            seen.append(reader.get(minted.record.id))
            first_read.set()
            revoked.wait()
            seen.append(reader.get(minted.record.id))

        thread = threading.Thread(target=request_thread)
        thread.start()
        first_read.wait()
        other.est.revoke_credential(minted.record.username, actor="t")
        revoked.set()
        thread.join()
    finally:
        other.close()
    assert seen[0] == minted.record
    assert seen[1] is not None and seen[1].revoked_at == clock.now()

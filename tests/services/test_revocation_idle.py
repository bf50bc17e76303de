"""Revocation maintenance runs every 2 seconds in ``serve``: a round with nothing to do
(CRLs current, responder certificates fresh, none expired) opens no write transaction, so it
never queues for SQLite's one writer while requests do."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.x509 import KeyType, generate_private_key
from tests.conftest import FakeClock


@contextmanager
def _write_transactions(platform: Platform) -> Iterator[list[str]]:
    """The first statement of every transaction of this thread that writes or locks for
    writing (BEGIN IMMEDIATE on SQLite)."""
    engine = platform.database.engine
    me = threading.get_ident()
    writes: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        first = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if threading.get_ident() == me and (
            first in ("INSERT", "UPDATE", "DELETE") or statement.strip().upper() == "BEGIN IMMEDIATE"
        ):
            writes.append(statement.strip()[:60])

    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        yield writes
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)


def test_an_idle_maintenance_round_writes_nothing(platform: Platform) -> None:
    # Given a CA whose CRLs and OCSP responder certificate maintenance has just made
    key = generate_private_key(KeyType.EC_P256)
    platform.issuance.issue(
        IssuanceRequest("tls-server", key.public_key(), ("idle.example.test",)), actor="test"
    )
    platform.revocation.maintain()
    # When the next round finds nothing due
    with _write_transactions(platform) as writes:
        report = platform.revocation.maintain()
    # Then it wrote nothing and took no write lock
    assert report.errors == [] and report.crls_built == 0
    assert writes == []


def _crl_reads(platform: Platform) -> Any:
    """Counts this thread's reads of the crls table while the block runs."""
    engine = platform.database.engine
    me = threading.get_ident()
    reads: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if (
            threading.get_ident() == me
            and statement.lstrip().upper().startswith("SELECT")
            and " crls" in statement
        ):
            reads.append(statement)

    @contextmanager
    def watching() -> Iterator[list[str]]:
        event.listen(engine, "before_cursor_execute", on_statement)
        try:
            yield reads
        finally:
            event.remove(engine, "before_cursor_execute", on_statement)

    return watching()


def test_a_round_reads_no_crl_until_a_revocation_or_its_refresh_time(
    platform: Platform, clock: FakeClock
) -> None:
    # Given CRLs a maintenance round has just built or found fresh
    key = generate_private_key(KeyType.EC_P256)
    issued = platform.issuance.issue(
        IssuanceRequest("tls-server", key.public_key(), ("fresh.example.test",)), actor="test"
    )
    platform.revocation.maintain()
    # When nothing is revoked and no CRL is due, the next round reads none
    with _crl_reads(platform) as reads:
        assert platform.revocation.maintain().crls_built == 0
    assert reads == []
    # A revocation (its generation) makes the next round rebuild the CA's CRLs
    platform.revocation.revoke(issued.record.serial, "superseded", actor="test")
    assert platform.revocation.maintain().crls_built == 2  # full and delta
    with _crl_reads(platform) as reads:
        assert platform.revocation.maintain().crls_built == 0
    assert reads == []
    # And so does the time a CRL is due again (a third into the delta's validity)
    clock.advance(platform.revocation.settings.delta_crl_validity / 3)
    assert platform.revocation.maintain().crls_built >= 1

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

"""ACME's finalize in issuance's transactions (``SqlAcmeLedger``): the order moves to
processing in the serial's transaction, only while it is ready, unexpired and every one of
its authorizations valid; of two claims of one order (in one batch or across connections)
one reserves a serial and the other writes nothing. A finalize writes in issuance's two
transactions and in no transaction of its own."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from dataclasses import replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwk import JWKEC
from sqlalchemy import event

from certfleet.app import Platform
from certfleet.lifecycle.issuance import ClaimOutcome, SerialClaim
from certfleet.protocols.acme import AuthzStatus, FinalizeClaim, Identifier, IssueOrder, Order, OrderStatus
from certfleet.protocols.acme.accounts import Account, AccountStatus
from certfleet.protocols.acme.authorizations import new_authorization
from certfleet.protocols.acme.bindings import ServiceIssuer
from certfleet.store._acme_ledger import ORDER_NOT_READY, SqlAcmeLedger
from tests.services.snapshot import rows
from tests.store._threads import run_together
from tests.x509.factories import build_csr


def _ready_order(platform: Platform, name: str) -> tuple[str, str]:
    """(order id, authorization id) of a ready order with one valid authorization."""
    now = platform.clock.now()
    account_id = secrets.token_hex(6)
    authz = new_authorization(account_id, Identifier("dns", name), now)
    order_id = secrets.token_hex(6)
    with platform.store.unit_of_work() as uow:
        uow.acme.accounts.add(
            Account(account_id, f"tp-{account_id}", _account_jwk(), AccountStatus.VALID, (), True, now)
        )
        uow.acme.authorizations.add(authz)
        uow.acme.authorizations.set_status(
            authz.id,
            AuthzStatus.VALID,
            expected=(AuthzStatus.PENDING,),
            expires_at=now + dt.timedelta(days=1),
        )
        uow.acme.orders.add(
            Order(
                order_id,
                account_id,
                OrderStatus.READY,
                (Identifier("dns", name),),
                (authz.id,),
                now + dt.timedelta(days=1),
                now,
                "tls-server",
            )
        )
    return order_id, authz.id


def _account_jwk() -> str:
    return json.dumps(JWKEC(key=ec.generate_private_key(ec.SECP256R1())).public_key().to_partial_json())


def _claim(platform: Platform, order_id: str) -> SerialClaim:
    now = platform.clock.now()
    return SerialClaim(
        serial=secrets.token_hex(16),
        issuer_ca_id=platform.authorities.issuing_authority().issuer.id,
        issuer_must_be_active=False,
        spki_sha256=secrets.token_hex(32),
        at=now,
        annex=FinalizeClaim(order_id, now),
    )


def _state(platform: Platform, order_id: str) -> tuple[str, int]:
    """(the order's status, serials reserved)."""
    ((status,),) = rows(platform.database, "SELECT status FROM acme_orders WHERE id = :i", i=order_id)
    ((serials,),) = rows(platform.database, "SELECT count(*) FROM serials WHERE state = 'reserved'")
    return status, serials


def test_one_order_claimed_twice_in_a_batch_reserves_one_serial(platform: Platform) -> None:
    order_id, _ = _ready_order(platform, "twice.ledger.example.test")
    ledger = SqlAcmeLedger(platform.database)
    results = ledger.claim_serials([_claim(platform, order_id), _claim(platform, order_id)])
    assert [(r.outcome, r.refusal) for r in results] == [
        (ClaimOutcome.RESERVED, None),
        (ClaimOutcome.ANNEX_REFUSED, ORDER_NOT_READY),
    ]
    assert _state(platform, order_id) == ("processing", 1)


def test_one_order_claimed_from_two_connections_at_once_reserves_one_serial(platform: Platform) -> None:
    order_id, _ = _ready_order(platform, "racing.ledger.example.test")
    ledger = SqlAcmeLedger(platform.database)
    results = run_together(2, lambda: ledger.claim_serials([_claim(platform, order_id)])[0]).results
    assert sorted(r.outcome.value for r in results) == sorted(
        [ClaimOutcome.RESERVED.value, ClaimOutcome.ANNEX_REFUSED.value]
    )
    assert _state(platform, order_id) == ("processing", 1)


def test_an_order_whose_authorization_was_deactivated_since_is_not_claimed(platform: Platform) -> None:
    # Given a ready order whose authorization the client deactivated after finalize read it
    order_id, authz_id = _ready_order(platform, "deactivated.ledger.example.test")
    with platform.store.unit_of_work() as uow:
        uow.acme.authorizations.set_status(authz_id, AuthzStatus.DEACTIVATED, expected=(AuthzStatus.VALID,))
    # When finalize's claim reaches the serial's transaction
    [result] = SqlAcmeLedger(platform.database).claim_serials([_claim(platform, order_id)])
    # Then it is refused and nothing is written: no serial, the order untouched
    assert (result.outcome, result.refusal) == (ClaimOutcome.ANNEX_REFUSED, ORDER_NOT_READY)
    assert _state(platform, order_id) == ("ready", 0)


def test_a_finalize_writes_only_in_issuances_two_transactions(platform: Platform) -> None:
    # Given a ready order and its CSR
    order_id, _ = _ready_order(platform, "two.ledger.example.test")
    csr = build_csr(ec.generate_private_key(ec.SECP256R1()), ("two.ledger.example.test",))
    issue = IssueOrder(
        csr=csr,
        names=("two.ledger.example.test",),
        common_name=None,
        profile="tls-server",
        team=None,
        allow_names=None,
        actor="acme:test",
    )
    issuer = ServiceIssuer(platform.issuance)
    # When it is issued with its claim, counting every write on every thread
    with _WriteTransactions(platform) as transactions:
        issued = issuer.issue(replace(issue, claim=FinalizeClaim(order_id, platform.clock.now())))
    # Then the order moved with the serial and with the record: two write transactions in
    # all (issuance's), not four
    with platform.store.unit_of_work() as uow:
        done = uow.acme.orders.get(order_id)
    assert done is not None and done.status is OrderStatus.VALID
    assert done.certificate_serial == issued.serial
    assert done.certificate_chain == issued.chain_pem
    writes = [t for t in transactions if any(_writes(s) for s in t)]
    assert len(writes) == 2, writes
    order_moves = [t for t in writes if any(s.startswith("UPDATE acme_orders") for s in t)]
    assert len(order_moves) == 2
    assert any(s.startswith("INSERT INTO serials") for s in order_moves[0])
    assert any(s.startswith("INSERT INTO certificates") for s in order_moves[1])


def _writes(statement: str) -> bool:
    return statement.split(" ", 1)[0] in ("INSERT", "UPDATE", "DELETE")


class _WriteTransactions:
    """Every transaction's statements, on every thread (the group committer's included)."""

    def __init__(self, platform: Platform) -> None:
        self._engine = platform.database.engine
        self._open: dict[int, list[str]] = {}
        self._lock = threading.Lock()
        self.transactions: list[list[str]] = []

    def _begin(self, conn: Any) -> None:
        with self._lock:
            self._open[id(conn)] = []

    def _statement(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        with self._lock:
            if id(conn) in self._open:
                self._open[id(conn)].append(" ".join(statement.split()))

    def _end(self, conn: Any) -> None:
        with self._lock:
            done = self._open.pop(id(conn), None)
            if done is not None:
                self.transactions.append(done)

    def __enter__(self) -> list[list[str]]:
        event.listen(self._engine, "begin", self._begin)
        event.listen(self._engine, "before_cursor_execute", self._statement)
        event.listen(self._engine, "commit", self._end)
        event.listen(self._engine, "rollback", self._end)
        return self.transactions

    def __exit__(self, *_: object) -> None:
        event.remove(self._engine, "begin", self._begin)
        event.remove(self._engine, "before_cursor_execute", self._statement)
        event.remove(self._engine, "commit", self._end)
        event.remove(self._engine, "rollback", self._end)

"""The ACME repositories on SQLite and PostgreSQL: nonces shared between processes and
consumed once, conditional order transitions that let exactly one finalize win."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from certfleet.app import Platform
from certfleet.protocols.acme import AcmeProblem, Identifier, Order, OrderStatus
from certfleet.protocols.acme.accounts import Account, AccountStatus
from tests.conftest import FakeClock, make_platform


def _account(platform: Platform, account_id: str = "acct1") -> None:
    with platform.store.unit_of_work() as uow:
        uow.acme.accounts.add(
            Account(account_id, f"tp-{account_id}", "{}", AccountStatus.VALID, (), True, platform.clock.now())
        )


def test_a_nonce_from_one_process_is_accepted_once_by_another(
    platform: Platform, data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    other = make_platform(data_dir, db_url, clock)  # a second server process on the same database
    try:
        nonce = platform.acme.new_nonce()
        other.acme.nonces.consume(nonce)
        with pytest.raises(AcmeProblem) as caught:
            platform.acme.nonces.consume(nonce)
        assert caught.value.kind == "badNonce"
    finally:
        other.close()


def test_nonces_expire(platform: Platform, clock: FakeClock) -> None:
    nonce = platform.acme.new_nonce()
    clock.advance(platform.settings.acme.nonce_lifetime)
    with pytest.raises(AcmeProblem):
        platform.acme.nonces.consume(nonce)


def test_racing_consumers_of_one_nonce_let_one_through(platform: Platform) -> None:
    nonce = platform.acme.new_nonce()
    barrier = threading.Barrier(4)

    def consume(_: int) -> bool:
        barrier.wait()
        try:
            platform.acme.nonces.consume(nonce)
        except AcmeProblem:
            return False
        return True

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(consume, range(4))) == [False, False, False, True]


def test_only_one_transition_from_ready_to_processing_wins(platform: Platform) -> None:
    _account(platform)
    now = platform.clock.now()
    order = Order(
        "order1",
        "acct1",
        OrderStatus.READY,
        (Identifier("dns", "a.test"),),
        (),
        now + dt.timedelta(days=1),
        now,
        "tls-server",
    )
    with platform.store.unit_of_work() as uow:
        uow.acme.orders.add(order)
    barrier = threading.Barrier(4)

    def transition(_: int) -> bool:
        barrier.wait()
        with platform.store.unit_of_work() as uow:
            return uow.acme.orders.transition("order1", OrderStatus.PROCESSING, expected=(OrderStatus.READY,))

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(transition, range(4))) == [False, False, False, True]
    with platform.store.unit_of_work() as uow:
        assert uow.acme.orders.complete("order1", "abc", "PEM")
        assert not uow.acme.orders.complete("order1", "def", "PEM")
        stored = uow.acme.orders.get("order1")
    assert stored is not None and stored.status is OrderStatus.VALID and stored.certificate_serial == "abc"


def test_eab_key_binds_once(platform: Platform) -> None:
    _account(platform)
    _account(platform, "acct2")
    minted = platform.acme.create_eab_key("web", ["*.web.test"], actor="test")
    with platform.store.unit_of_work() as uow:
        assert uow.acme.eab_keys.bind(minted.record.kid, "acct1", platform.clock.now())
        assert not uow.acme.eab_keys.bind(minted.record.kid, "acct2", platform.clock.now())
    [listed] = platform.acme.eab_keys()
    assert listed.account_id == "acct1" and listed.allow_names == ("*.web.test",)

"""An order or a challenge left ``processing`` by a process that died (killed mid-finalize,
mid-validation) is resolved by the ``acme.stalled`` job once it is older than ``[acme]
stalled_after``: the order ends invalid with a reason, the challenge fails with its
authorization and order; neither stays processing for ever. A live one is left alone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from certfleet.protocols.acme.orders import OrderStatus
from certfleet.protocols.acme.recovery import CHALLENGE_DETAIL, ORDER_DETAIL
from tests.protocols.acme.conftest import AcmeHarness
from tests.protocols.acme.problems_check import URN
from tests.protocols.acme.raw import Account


@pytest.fixture(scope="module")
def account(acme: AcmeHarness) -> Account:
    return acme.client.new_account()


def _stalled_after(acme: AcmeHarness) -> dt.timedelta:
    return acme.platform.settings.acme.stalled_after


def test_an_order_whose_finalize_died_ends_invalid_with_a_reason(acme: AcmeHarness, account: Account) -> None:
    # Given an order that a finalize moved to processing before its process was killed
    names = ["died-finalizing.example.test"]
    order_url, _ = acme.ready_order(account, names)
    order_id = order_url.rsplit("/", 1)[1]
    with acme.platform.acme.transactions() as uow:  # what the killed finalize had committed
        assert uow.acme.orders.transition(
            order_id, OrderStatus.PROCESSING, expected=(OrderStatus.READY,), at=acme.clock.now()
        )
    # While it could still be a live finalize, it is left alone
    acme.clock.advance(_stalled_after(acme) - dt.timedelta(seconds=1))
    assert acme.platform.acme.resolve_stalled().orders == ()
    assert acme.get(account, order_url)["status"] == "processing"
    # When it has been processing longer than any finalize takes
    acme.clock.advance(dt.timedelta(seconds=2))
    outcome = acme.platform.acme.resolve_stalled()
    # Then the client polling it sees it invalid, with the reason
    assert outcome.orders == (order_id,)
    order: dict[str, Any] = acme.get(account, order_url)
    assert order["status"] == "invalid"
    assert order["error"]["type"] == URN + "serverInternal"
    assert order["error"]["detail"] == ORDER_DETAIL
    # And resolving again changes nothing
    assert acme.platform.acme.resolve_stalled().orders == ()


def test_a_challenge_whose_validation_worker_died_fails_with_its_order(
    acme: AcmeHarness, account: Account
) -> None:
    # Given a challenge shown processing whose validation worker died with its process
    response = acme.client.new_order(account, ["died-validating.example.test"])
    assert response.status_code == 201, response.text
    order_url, authz_url = response.headers["Location"], response.json()["authorizations"][0]
    challenge = next(c for c in acme.get(account, authz_url)["challenges"] if c["type"] == "http-01")
    with acme.platform.acme.transactions() as uow:  # what the killed request had committed
        assert uow.acme.authorizations.start_challenge(challenge["url"].rsplit("/", 1)[1], acme.clock.now())
    assert acme.get(account, authz_url)["challenges"][0]["status"] == "processing"
    # When it has been processing longer than any validation takes
    acme.clock.advance(_stalled_after(acme) + dt.timedelta(seconds=1))
    outcome = acme.platform.acme.resolve_stalled()
    # Then the challenge, its authorization and the order end invalid, saying why
    assert outcome.challenges == (challenge["url"].rsplit("/", 1)[1],)
    authz = acme.get(account, authz_url)
    assert authz["status"] == "invalid"
    failed = next(c for c in authz["challenges"] if c["type"] == "http-01")
    assert failed["status"] == "invalid"
    assert failed["error"]["type"] == URN + "serverInternal"
    assert failed["error"]["detail"] == CHALLENGE_DETAIL
    order = acme.get(account, order_url)
    assert order["status"] == "invalid"
    assert order["error"]["type"] == URN + "serverInternal"
    assert acme.platform.acme.resolve_stalled().challenges == ()


def test_the_stalled_job_runs_in_the_scheduler(acme: AcmeHarness) -> None:
    assert "acme.stalled" in {job.name for job in acme.platform.scheduler.jobs}

"""``[acme] deny_networks`` end to end: with 127.0.0.0/8 denied, a challenge answered
correctly by a real responder on 127.0.0.1 fails with ``connection``, and the validator never
connects to it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.protocols.acme.conftest import AcmeHarness, build_harness
from tests.protocols.acme.peers import ChallTestSrv
from tests.protocols.acme.problems_check import URN
from tests.protocols.acme.raw import Account, key_authorization


@pytest.fixture(scope="module")
def denied(tmp_path_factory: pytest.TempPathFactory, challtestsrv: ChallTestSrv) -> Iterator[AcmeHarness]:
    yield from build_harness(
        tmp_path_factory.mktemp("acme-deny"), challtestsrv, extra_config='deny_networks = ["127.0.0.0/8"]\n'
    )


@pytest.fixture(scope="module")
def account(denied: AcmeHarness) -> Account:
    return denied.client.new_account()


def _challenge(
    harness: AcmeHarness, account: Account, name: str, kind: str
) -> tuple[str, str, dict[str, Any]]:
    response = harness.client.new_order(account, [name])
    assert response.status_code == 201, response.text
    authz_url = response.json()["authorizations"][0]
    authz = harness.get(account, authz_url)
    return response.headers["Location"], authz_url, next(c for c in authz["challenges"] if c["type"] == kind)


def _assert_denied(harness: AcmeHarness, account: Account, order_url: str, authz: dict[str, Any]) -> None:
    assert authz["status"] == "invalid"
    error = next(c["error"] for c in authz["challenges"] if c.get("error"))
    assert error["type"] == URN + "connection"
    assert "denied network (127.0.0.0/8)" in error["detail"]
    assert harness.get(account, order_url)["status"] == "invalid"


@pytest.mark.parametrize("name", ["inside.net.example.test", "127.0.0.1"])
def test_http01_to_a_denied_network_fails_without_connecting(
    denied: AcmeHarness, account: Account, name: str
) -> None:
    # Given a responder on 127.0.0.1 serving the right key authorization
    order_url, authz_url, challenge = _challenge(denied, account, name, "http-01")
    denied.http01.tokens[challenge["token"]] = key_authorization(challenge["token"], account.key)
    before = denied.http01.connections
    # When the client answers the challenge
    authz = denied.answer(account, authz_url, serve=False)
    # Then validation fails as denied, and the responder saw no connection at all
    _assert_denied(denied, account, order_url, authz)
    assert denied.http01.connections == before


def test_tls_alpn01_to_a_denied_network_fails_without_connecting(
    denied: AcmeHarness, account: Account
) -> None:
    with socket.create_server(("127.0.0.1", denied.tlsalpn_port)) as listener:
        order_url, authz_url, _ = _challenge(denied, account, "alpn.net.example.test", "tls-alpn-01")
        authz = denied.answer(account, authz_url, kind="tls-alpn-01")
        _assert_denied(denied, account, order_url, authz)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing waits in the backlog: the validator never connected

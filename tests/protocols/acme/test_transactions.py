"""One database transaction per ACME request, and nonces that any server process accepts once.

These call :meth:`AcmeServer.handle` in-process (no HTTP), so the transactions counted are
exactly those the request opens on this thread, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from josepy.jwk import JWK
from sqlalchemy import event

from certfleet.app import Platform
from certfleet.protocols.acme import AcmeRequest, AcmeResponse, AcmeUrls, Endpoint
from tests.conftest import FakeClock, make_platform
from tests.protocols.acme.raw import ec_key, sign_flattened

URLS = AcmeUrls("https://ca.test/acme")
JOSE = "application/jose+json"
URN = "urn:ietf:params:acme:error:"


def _request(
    platform: Platform, url: str, payload: Any, key: JWK, *, kid: str | None = None, nonce: str | None = None
) -> AcmeRequest:
    protected: dict[str, Any] = {"alg": "ES256", "url": url, "nonce": nonce or platform.acme.new_nonce()}
    if kid is None:
        protected["jwk"] = key.public_key().to_partial_json()
    else:
        protected["kid"] = kid
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return AcmeRequest(url, JOSE, json.dumps(sign_flattened(key, protected, body)).encode(), URLS)


def _new_account(platform: Platform, key: JWK) -> str:
    response = platform.acme.handle(
        Endpoint.NEW_ACCOUNT, _request(platform, URLS.new_account(), {"termsOfServiceAgreed": True}, key)
    )
    assert response.status == 201, response.body
    return response.headers["Location"]


@contextmanager
def _transactions_on_this_thread(platform: Platform) -> Iterator[list[int]]:
    """Count the transactions (BEGINs) this thread opens while the block runs."""
    engine = platform.database.engine
    me = threading.get_ident()
    begins: list[int] = []

    def on_begin(_conn: Any) -> None:
        if threading.get_ident() == me:
            begins.append(1)

    event.listen(engine, "begin", on_begin)
    try:
        yield begins
    finally:
        event.remove(engine, "begin", on_begin)


def _order_request(
    platform: Platform, key: JWK, kid: str, name: str, *, nonce: str | None = None
) -> AcmeRequest:
    payload = {"identifiers": [{"type": "dns", "value": name}]}
    return _request(platform, URLS.new_order(), payload, key, kid=kid, nonce=nonce)


def _order(platform: Platform, key: JWK, kid: str, name: str) -> tuple[AcmeRequest, list[int], AcmeResponse]:
    request = _order_request(platform, key, kid, name)
    with _transactions_on_this_thread(platform) as begins:
        response = platform.acme.handle(Endpoint.NEW_ORDER, request)
    return request, begins, response


def test_new_order_is_one_write_transaction(platform: Platform) -> None:
    # Given an account and a nonce
    key = ec_key()
    kid = _new_account(platform, key)
    request = _order_request(platform, key, kid, "one.tx.example.test")
    # When it orders a certificate
    with _transactions_on_this_thread(platform) as begins, _statements_on_this_thread(platform) as statements:
        response = platform.acme.handle(Endpoint.NEW_ORDER, request)
    assert response.status == 201, response.body
    assert response.headers["Replay-Nonce"]
    if platform.database.dialect == "postgresql":
        # Then consuming the nonce, loading the account, creating the order and its
        # authorization and storing the next nonce were one transaction (it was four)
        assert len(begins) == 1
    else:
        # Then on SQLite (nonces in the node's file) the account was read in a read-only
        # transaction, so the one write transaction (SQLite's single writer) is not held
        # across the look-up and the signature check
        assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN", "BEGIN IMMEDIATE"]
        first_write = statements.index("BEGIN IMMEDIATE")
        assert any("acme_accounts" in s for s in statements[:first_write])
        assert any(s.startswith("INSERT INTO acme_orders") for s in statements[first_write:])


def test_reading_an_authorization_is_one_transaction(platform: Platform) -> None:
    key = ec_key()
    kid = _new_account(platform, key)
    _, _, order = _order(platform, key, kid, "read.tx.example.test")
    assert isinstance(order.body, dict)
    authz_url = order.body["authorizations"][0]
    request = _request(platform, authz_url, b"", key, kid=kid)
    with _transactions_on_this_thread(platform) as begins:
        response = platform.acme.handle(Endpoint.AUTHZ, request, authz_url.rsplit("/", 1)[-1])
    assert response.status == 200, response.body
    assert len(begins) == 1


def test_a_refused_request_still_uses_up_its_nonce(platform: Platform) -> None:
    # Given a request that passes authentication and is then refused (its transaction,
    # with the nonce it consumed, is rolled back)
    key = ec_key()
    kid = _new_account(platform, key)
    request = _request(platform, URLS.new_order(), {"identifiers": [], "bogus": 1}, key, kid=kid)
    refused = platform.acme.handle(Endpoint.NEW_ORDER, request)
    assert refused.status == 400
    assert isinstance(refused.body, dict) and refused.body["type"] == URN + "malformed"
    assert refused.headers["Replay-Nonce"]
    # When the same signed request is sent again
    replayed = platform.acme.handle(Endpoint.NEW_ORDER, request)
    # Then its nonce is refused: the problem's transaction burnt it
    assert isinstance(replayed.body, dict) and replayed.body["type"] == URN + "badNonce"


def test_a_nonce_from_one_server_process_is_accepted_once_by_another(
    platform: Platform, data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    # Given two server processes (two platforms) on one database
    other = make_platform(data_dir, db_url, clock)
    try:
        key = ec_key()
        kid = _new_account(platform, key)
        # When a nonce issued by the first signs a request sent to the second
        _, _, first = _order(platform, key, kid, "a.two.example.test")
        nonce = first.headers["Replay-Nonce"]
        request = _order_request(other, key, kid, "b.two.example.test", nonce=nonce)
        accepted = other.acme.handle(Endpoint.NEW_ORDER, request)
        # Then the second accepts it, and neither accepts it again
        assert accepted.status == 201, accepted.body
        for server in (platform, other):
            replayed = server.acme.handle(Endpoint.NEW_ORDER, request)
            assert isinstance(replayed.body, dict) and replayed.body["type"] == URN + "badNonce"
    finally:
        other.close()


@pytest.mark.parametrize("endpoint", [Endpoint.NEW_ORDER, Endpoint.AUTHZ])
def test_requests_from_several_threads_each_commit_their_own_work(
    platform: Platform, endpoint: Endpoint
) -> None:
    # The request scope is per thread: concurrent requests never share a transaction.
    key = ec_key()
    kid = _new_account(platform, key)
    _, _, order = _order(platform, key, kid, f"{endpoint.value}.threads.example.test")
    assert isinstance(order.body, dict)
    authz_url = order.body["authorizations"][0]
    results: list[int] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        if endpoint is Endpoint.NEW_ORDER:
            payload: Any = {"identifiers": [{"type": "dns", "value": f"t{index}.threads.example.test"}]}
            request = _request(platform, URLS.new_order(), payload, key, kid=kid)
            response = platform.acme.handle(endpoint, request)
        else:
            request = _request(platform, authz_url, b"", key, kid=kid)
            response = platform.acme.handle(endpoint, request, authz_url.rsplit("/", 1)[-1])
        with lock:
            results.append(response.status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201 if endpoint is Endpoint.NEW_ORDER else 200] * 6


@contextmanager
def _statements_on_this_thread(platform: Platform) -> Iterator[list[str]]:
    engine = platform.database.engine
    me = threading.get_ident()
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == me:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_only_a_read_commits_without_waiting_for_the_disk(platform: Platform) -> None:
    # Given an order (its creation is work: committed durably, as every write is)
    key = ec_key()
    kid = _new_account(platform, key)
    request = _request(
        platform,
        URLS.new_order(),
        {"identifiers": [{"type": "dns", "value": "d.tx.example.test"}]},
        key,
        kid=kid,
    )
    with _statements_on_this_thread(platform) as written:
        order = platform.acme.handle(Endpoint.NEW_ORDER, request)
    assert isinstance(order.body, dict)
    # When the client polls the order with POST-as-GET
    order_url = order.headers["Location"]
    with _statements_on_this_thread(platform) as read:
        polled = platform.acme.handle(
            Endpoint.ORDER, _request(platform, order_url, b"", key, kid=kid), order_url.rsplit("/", 1)[-1]
        )
    assert polled.status == 200
    # Then only the read's transaction (it moved nothing but nonces) skips the WAL flush on
    # PostgreSQL; SQLite in WAL mode never waits for one
    relaxed = "SET LOCAL synchronous_commit TO OFF"
    assert relaxed not in written
    assert (relaxed in read) is (platform.database.dialect == "postgresql")


def test_nonces_cost_a_request_one_statement_on_postgresql_and_none_on_sqlite(platform: Platform) -> None:
    # Given an account, and an order request signed with a fresh nonce
    key = ec_key()
    kid = _new_account(platform, key)
    request = _order_request(platform, key, kid, "poll.tx.example.test")
    # When the order is made, then its authorization and the order polled (POST-as-GET)
    with _statements_on_this_thread(platform) as ordering:
        order = platform.acme.handle(Endpoint.NEW_ORDER, request)
    assert isinstance(order.body, dict), order.body
    polls = [
        (_request(platform, url, b"", key, kid=kid), endpoint, url.rsplit("/", 1)[-1])
        for url, endpoint in (
            (order.body["authorizations"][0], Endpoint.AUTHZ),
            (order.headers["Location"], Endpoint.ORDER),
        )
    ]
    with _statements_on_this_thread(platform) as polling:
        for poll, endpoint, resource in polls:
            polled = platform.acme.handle(endpoint, poll, resource)
            assert polled.status == 200, polled.body
            assert polled.headers["Replay-Nonce"]
    written = [s for s in polling if s.split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]
    if platform.database.dialect == "sqlite":
        # Then on SQLite (one host: the node's processes share a nonce file) the polls are
        # read-only transactions: no write lock (BEGIN IMMEDIATE), no statement that writes,
        # and newOrder writes no nonce row either
        assert not any(s.startswith("BEGIN IMMEDIATE") for s in polling)
        assert written == []
        assert not any("acme_nonces" in s for s in ordering + polling)
    else:
        # On PostgreSQL (several nodes share the table) each request replaces the nonce it
        # used by its answer's in one UPDATE (it was a DELETE and an INSERT)
        assert [s.split()[0].upper() for s in ordering if "acme_nonces" in s] == ["UPDATE"]
        assert [s.split()[0].upper() for s in written] == ["UPDATE", "UPDATE"]
        assert all("acme_nonces" in s for s in written)


def test_on_sqlite_a_nonce_from_before_a_restart_is_refused_and_the_client_retries(
    tmp_path: Path, clock: FakeClock
) -> None:
    # Given a server on SQLite that handed out a nonce, then stopped (every process)
    data_dir = tmp_path / "restarted"
    url = f"sqlite:///{data_dir / 'certfleet.db'}"
    before = make_platform(data_dir, url, clock)
    key = ec_key()
    kid = _new_account(before, key)
    stale = before.acme.new_nonce()
    before.close()
    # When the restarted server gets a request signed with it
    after = make_platform(data_dir, url, clock)
    try:
        name = "restart.tx.example.test"
        refused = after.acme.handle(Endpoint.NEW_ORDER, _order_request(after, key, kid, name, nonce=stale))
        # Then it is refused with badNonce (a new run has a new nonce key), and the fresh
        # Replay-Nonce of that answer works
        assert isinstance(refused.body, dict) and refused.body["type"] == URN + "badNonce"
        retried = after.acme.handle(
            Endpoint.NEW_ORDER,
            _order_request(after, key, kid, name, nonce=refused.headers["Replay-Nonce"]),
        )
        assert retried.status == 201, retried.body
    finally:
        after.close()

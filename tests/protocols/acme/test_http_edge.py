"""The ACME app on the HTTPS listener (``certfleet.api.acme``), in front of the FastAPI app:
unknown resources and wrong methods are RFC 8555 problems with the statuses the FastAPI
router gave them, a trailing slash is redirected, an oversized body is refused before it is
read, a database out of reach is 503 with Retry-After, and every request is counted on
``/metrics`` under the same names and labels as before."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from certfleet.access import Scope
from tests.protocols.acme.conftest import AcmeHarness, ChallTestSrv, build_harness
from tests.protocols.acme.problems_check import URN, refused_without_change
from tests.protocols.acme.raw import Account


@pytest.fixture(scope="module")
def account(acme: AcmeHarness) -> Account:
    return acme.client.new_account()


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["type"] == URN + "malformed" and body["status"] == status and body["detail"]
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/acme/",
        "/acme/nope",
        "/acme/renewal-info",
        "/acme/order/x/y",
        "/acme/chall/",
        "/acme/order//finalize",
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE"])
def test_an_unknown_resource_is_404(acme: AcmeHarness, path: str, method: str) -> None:
    response = acme.client.http.request(method, acme.base_url + path)
    assert response.status_code == 404
    if method != "HEAD":
        _problem(response, 404)


@pytest.mark.parametrize(
    ("path", "method", "allowed"),
    [
        ("/acme/new-order", "GET", "POST"),
        ("/acme/order/x/finalize", "PUT", "POST"),
        ("/acme/cert/x", "HEAD", "POST"),
        ("/acme/directory", "POST", "GET"),
        ("/acme/directory", "HEAD", "GET"),
        ("/acme/terms", "DELETE", "GET"),
        ("/acme/new-nonce", "POST", "GET, HEAD"),
        ("/acme/renewal-info/x", "POST", "GET"),
    ],
)
def test_a_wrong_method_is_405_naming_the_allowed_ones(
    acme: AcmeHarness, path: str, method: str, allowed: str
) -> None:
    response = acme.client.http.request(method, acme.base_url + path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    if method != "HEAD":
        _problem(response, 405)


def test_a_trailing_slash_is_redirected_to_the_resource(acme: AcmeHarness) -> None:
    response = acme.client.http.get(acme.base_url + "/acme/directory/?x=1")
    assert response.status_code == 307
    assert response.headers["location"] == acme.base_url + "/acme/directory?x=1"


def test_new_nonce_answers_head_200_and_get_204(acme: AcmeHarness) -> None:
    head = acme.client.http.head(acme.directory["newNonce"])
    get = acme.client.http.get(acme.directory["newNonce"])
    assert (head.status_code, get.status_code) == (200, 204)
    for response in (head, get):
        assert response.headers["replay-nonce"] and response.headers["cache-control"] == "no-store"
        assert response.headers["link"] == f'<{acme.client.directory_url}>;rel="index"'
    assert head.headers["replay-nonce"] != get.headers["replay-nonce"]


def test_a_chunked_body_over_the_limit_is_refused_without_change(acme: AcmeHarness, account: Account) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the count decides
        yield from (b"x" * 16384 for _ in range(8))

    response = refused_without_change(
        acme,
        lambda: acme.client.http.post(
            acme.directory["newOrder"], content=chunks(), headers={"Content-Type": "application/jose+json"}
        ),
        "malformed",
        413,
    )
    assert response.headers["connection"] == "close"  # the rest of the body is never read


def test_a_body_over_the_server_limit_too_is_an_acme_problem(acme: AcmeHarness) -> None:
    response = refused_without_change(
        acme,
        lambda: acme.client.post_raw(acme.directory["newAccount"], b"{" * (2 * 1024 * 1024)),
        "malformed",
        413,
    )
    assert "65536" in response.json()["detail"]


def test_requests_are_counted_by_endpoint_method_and_status(acme: AcmeHarness, account: Account) -> None:
    def counts() -> dict[tuple[str, str, str], float]:
        token = acme.platform.tokens.create("ops", Scope("admin"), [], actor="test").token
        scraped = acme.client.http.get(
            acme.base_url + "/metrics", headers={"Authorization": f"Bearer {token}"}
        )
        assert scraped.status_code == 200, scraped.text
        return {
            (s.labels["endpoint"], s.labels["method"], s.labels["code"]): s.value
            for family in text_string_to_metric_families(scraped.text)
            for s in family.samples
            if s.name == "certfleet_acme_requests_total"
        }

    before = counts()
    acme.client.http.get(acme.base_url + "/acme/no-such-thing")
    acme.client.http.get(acme.directory["newOrder"])
    order = acme.client.new_order(account, ["counted.example.test"])
    assert order.status_code == 201
    after = counts()
    for key in (("other", "GET", "404"), ("new-order", "GET", "405"), ("new-order", "POST", "201")):
        assert after.get(key, 0) - before.get(key, 0) == 1, key


def test_a_write_waiting_out_the_lock_of_another_writer_is_503_with_retry_after(
    tmp_path: Path, challtestsrv: ChallTestSrv
) -> None:
    harness = build_harness(
        tmp_path, challtestsrv, extra_config="\n[server]\nsqlite_lock_wait_seconds = 0.5\n"
    )
    acme = next(harness)
    try:
        # Given an account, and another writer holding the database's write lock
        account = acme.client.new_account()
        holder = sqlite3.connect(acme.data_dir / "certfleet.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            # When a new order waits for it longer than the bounded wait
            response = acme.client.new_order(account, ["locked.example.test"])
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # Then it is told to come back: serverInternal with 503 and Retry-After
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"]
        problem = response.json()
        assert problem["type"] == URN + "serverInternal" and problem["status"] == 503
        assert "database is unavailable" in problem["detail"]
        # and, the lock gone, the same request with a fresh nonce succeeds
        assert acme.client.new_order(account, ["locked.example.test"]).status_code == 201
    finally:
        next(harness, None)

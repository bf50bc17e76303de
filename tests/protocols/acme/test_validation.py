"""Challenge validation in the background: http-01, dns-01, tls-alpn-01 and CAA, and the
problems a failed validation records (connection, dns, incorrectResponse, caa)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.protocols.acme.conftest import AcmeHarness
from tests.protocols.acme.peers import tls_alpn_certificate, tls_alpn_responder
from tests.protocols.acme.problems_check import URN, refused_without_change
from tests.protocols.acme.raw import Account, b64, csr_der, dns01_value, key_authorization


@pytest.fixture(scope="module")
def account(acme: AcmeHarness) -> Account:
    return acme.client.new_account()


def _order(acme: AcmeHarness, account: Account, names: list[str]) -> tuple[str, dict[str, Any], list[str]]:
    response = acme.client.new_order(account, names)
    assert response.status_code == 201, response.text
    return response.headers["Location"], response.json(), response.json()["authorizations"]


def _challenge(acme: AcmeHarness, account: Account, authz_url: str, kind: str) -> dict[str, Any]:
    authz = acme.get(account, authz_url)
    return next(c for c in authz["challenges"] if c["type"] == kind)


def _failed_with(
    acme: AcmeHarness, account: Account, order_url: str, authz: dict[str, Any], kind: str
) -> None:
    assert authz["status"] == "invalid"
    errors = [c["error"] for c in authz["challenges"] if c.get("error")]
    assert errors and errors[0]["type"] == URN + kind, errors
    order = acme.get(account, order_url)
    assert order["status"] == "invalid"
    assert order["error"]["type"] == URN + kind


def test_challenge_shows_processing_then_valid(acme: AcmeHarness, account: Account) -> None:
    _, _, authzs = _order(acme, account, ["processing.val.example.test"])
    challenge = _challenge(acme, account, authzs[0], "http-01")
    acme.http01.tokens[challenge["token"]] = key_authorization(challenge["token"], account.key)
    response = acme.client.post(challenge["url"], {}, account.key, kid=account.kid)
    assert response.status_code == 200
    assert response.json()["status"] in ("processing", "valid")
    assert f'<{authzs[0]}>;rel="up"' in response.headers["Link"]
    authz = acme.wait_authz(account, authzs[0])
    assert authz["status"] == "valid"
    assert [c["type"] for c in authz["challenges"]] == ["http-01"]
    assert authz["challenges"][0]["validated"]


def test_authorization_is_valid_as_soon_as_its_validation_finishes(
    acme: AcmeHarness, account: Account
) -> None:
    # Given a pending authorization whose http-01 answer is served
    order_url, _, authzs = _order(acme, account, ["event.val.example.test"])
    challenge = _challenge(acme, account, authzs[0], "http-01")
    acme.http01.tokens[challenge["token"]] = key_authorization(challenge["token"], account.key)
    runner = acme.platform.acme.validation
    finished = threading.Event()
    runner.on_done = lambda challenge_id: finished.set() if challenge["url"].endswith(challenge_id) else None
    try:
        # When the client answers the challenge, validation starts on a worker at once
        response = acme.client.post(challenge["url"], {}, account.key, kid=account.kid)
        assert response.status_code == 200
        assert finished.wait(timeout=30), "the validation never ran"
    finally:
        runner.on_done = None
    # Then the first read after it finished (no polling) sees the authorization valid and
    # the order ready
    assert acme.get(account, authzs[0])["status"] == "valid"
    assert acme.get(account, order_url)["status"] == "ready"


def test_wrong_key_authorization_is_incorrect_response(acme: AcmeHarness, account: Account) -> None:
    order_url, _, authzs = _order(acme, account, ["wrong.val.example.test"])
    challenge = _challenge(acme, account, authzs[0], "http-01")
    acme.http01.tokens[challenge["token"]] = "not-the-key-authorization"
    authz = acme.answer(account, authzs[0], serve=False)
    _failed_with(acme, account, order_url, authz, "incorrectResponse")


def test_a_failed_http01_never_reflects_the_fetched_body(acme: AcmeHarness, account: Account) -> None:
    # A hostile client points its name at content it wants certfleet to fetch and show it.
    order_url, _, authzs = _order(acme, account, ["reflect.val.example.test"])
    challenge = _challenge(acme, account, authzs[0], "http-01")
    acme.http01.tokens[challenge["token"]] = "INTERNAL-PAGE-4b1d confidential"
    authz = acme.answer(account, authzs[0], serve=False)
    _failed_with(acme, account, order_url, authz, "incorrectResponse")
    error = next(c["error"] for c in authz["challenges"] if c.get("error"))
    order = acme.get(account, order_url)
    for detail in (error["detail"], order["error"]["detail"]):
        assert "INTERNAL-PAGE" not in detail
        assert "did not match" in detail and "31 bytes" in detail


def test_missing_http01_file_is_incorrect_response(acme: AcmeHarness, account: Account) -> None:
    order_url, _, authzs = _order(acme, account, ["missing.val.example.test"])
    authz = acme.answer(account, authzs[0], serve=False)
    _failed_with(acme, account, order_url, authz, "incorrectResponse")


def test_nothing_listening_is_connection(acme: AcmeHarness, account: Account) -> None:
    # The responder listens on 127.0.0.1 only: 127.0.0.2 refuses the connection.
    order_url, _, authzs = _order(acme, account, ["127.0.0.2"])
    authz = acme.answer(account, authzs[0], serve=True)
    _failed_with(acme, account, order_url, authz, "connection")


def test_servfail_is_dns(acme: AcmeHarness, account: Account) -> None:
    name = "servfail.val.example.test"
    acme.dns.set_servfail(name)
    try:
        order_url, _, authzs = _order(acme, account, [name])
        authz = acme.answer(account, authzs[0])
    finally:
        acme.dns.clear_servfail(name)
    _failed_with(acme, account, order_url, authz, "dns")


def test_missing_txt_record_is_incorrect_response(acme: AcmeHarness, account: Account) -> None:
    order_url, _, authzs = _order(acme, account, ["notxt.val.example.test"])
    authz = acme.answer(account, authzs[0], kind="dns-01")
    _failed_with(acme, account, order_url, authz, "incorrectResponse")


def test_caa_for_another_ca_fails_validation(acme: AcmeHarness, account: Account) -> None:
    name = "caa.val.example.test"
    acme.dns.add_caa(name, [{"tag": "issue", "value": "otherca.example"}])
    try:
        order_url, _, authzs = _order(acme, account, [name])
        authz = acme.answer(account, authzs[0])
    finally:
        acme.dns.clear_caa(name)
    _failed_with(acme, account, order_url, authz, "caa")


def test_caa_is_found_by_climbing_the_tree(acme: AcmeHarness, account: Account) -> None:
    acme.dns.add_caa("tree.val.example.test", [{"tag": "issue", "value": ";"}])
    try:
        order_url, _, authzs = _order(acme, account, ["leaf.tree.val.example.test"])
        authz = acme.answer(account, authzs[0])
    finally:
        acme.dns.clear_caa("tree.val.example.test")
    _failed_with(acme, account, order_url, authz, "caa")


def test_caa_naming_this_ca_allows_issuance(acme: AcmeHarness, account: Account) -> None:
    name = "caa-ok.val.example.test"
    acme.dns.add_caa(name, [{"tag": "issue", "value": "certfleet; validationmethods=http-01"}])
    try:
        _, _, authzs = _order(acme, account, [name])
        assert acme.answer(account, authzs[0])["status"] == "valid"
    finally:
        acme.dns.clear_caa(name)


def test_wildcard_is_offered_dns01_only_and_validates(acme: AcmeHarness, account: Account) -> None:
    order_url, _, authzs = _order(acme, account, ["*.wild.val.example.test"])
    authz = acme.get(account, authzs[0])
    assert authz["wildcard"] is True
    assert authz["identifier"] == {"type": "dns", "value": "wild.val.example.test"}
    assert [c["type"] for c in authz["challenges"]] == ["dns-01"]
    token = authz["challenges"][0]["token"]
    acme.dns.set_txt("_acme-challenge.wild.val.example.test", dns01_value(token, account.key))
    try:
        assert acme.answer(account, authzs[0], kind="dns-01")["status"] == "valid"
    finally:
        acme.dns.clear_txt("_acme-challenge.wild.val.example.test")
    response = acme.finalize(account, acme.get(account, order_url), ["*.wild.val.example.test"])
    assert response.status_code == 200, response.text


def test_ip_identifier_validates_with_http01(acme: AcmeHarness, account: Account) -> None:
    order_url, _, authzs = _order(acme, account, ["127.0.0.1"])
    authz = acme.get(account, authzs[0])
    assert sorted(c["type"] for c in authz["challenges"]) == ["http-01", "tls-alpn-01"]
    assert acme.answer(account, authzs[0])["status"] == "valid"
    response = acme.finalize(account, acme.get(account, order_url), ["127.0.0.1"])
    assert response.status_code == 200, response.text
    pem = acme.client.post_as_get(account, response.json()["certificate"]).content
    leaf = x509.load_pem_x509_certificates(pem)[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


@pytest.mark.parametrize("good", [True, False], ids=["matching", "wrong-digest"])
def test_tls_alpn01(acme: AcmeHarness, account: Account, tmp_path: Path, good: bool) -> None:
    name = f"alpn-{good}.val.example.test".lower()
    order_url, _, authzs = _order(acme, account, [name])
    challenge = _challenge(acme, account, authzs[0], "tls-alpn-01")
    key_auth = key_authorization(challenge["token"], account.key) if good else "other"
    cert_pem, key_pem = tls_alpn_certificate(name, key_auth)
    with tls_alpn_responder(acme.tlsalpn_port, cert_pem, key_pem, tmp_path):
        authz = acme.answer(account, authzs[0], kind="tls-alpn-01")
    if good:
        assert authz["status"] == "valid"
    else:
        _failed_with(acme, account, order_url, authz, "incorrectResponse")


def test_valid_authorizations_are_reused(acme: AcmeHarness, account: Account) -> None:
    _, first = acme.ready_order(account, ["reuse.val.example.test"])
    again = acme.client.new_order(account, ["reuse.val.example.test"])
    assert again.status_code == 201
    assert again.json()["status"] == "ready"
    assert again.json()["authorizations"] == first["authorizations"]
    # Another account never gets them.
    other = acme.client.new_account()
    theirs = acme.client.new_order(other, ["reuse.val.example.test"])
    assert theirs.json()["status"] == "pending"
    assert theirs.json()["authorizations"] != first["authorizations"]


def test_stale_caa_is_rechecked_at_finalize(acme: AcmeHarness, account: Account) -> None:
    name = "recheck.val.example.test"
    _, order = acme.ready_order(account, [name])
    acme.dns.add_caa(name, [{"tag": "issue", "value": "otherca.example"}])
    try:
        acme.clock.advance(acme.platform.settings.acme.caa_recheck + dt.timedelta(minutes=1))
        csr = b64(csr_der([name]))
        refused_without_change(
            acme,
            lambda: acme.client.post(order["finalize"], {"csr": csr}, account.key, kid=account.kid),
            "caa",
            403,
        )
    finally:
        acme.dns.clear_caa(name)
    assert acme.finalize(account, order, [name]).status_code == 200


def test_deactivated_authorization(acme: AcmeHarness, account: Account) -> None:
    _, _, authzs = _order(acme, account, ["deactivate.val.example.test"])
    response = acme.client.post(authzs[0], {"status": "deactivated"}, account.key, kid=account.kid)
    assert response.status_code == 200
    assert response.json()["status"] == "deactivated"

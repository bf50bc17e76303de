"""Every malformed or unauthorised request gets the precise RFC 8555 problem, a fresh
Replay-Nonce, and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.jwk import JWKEC, JWKRSA

from tests.protocols.acme.conftest import AcmeHarness
from tests.protocols.acme.problems_check import assert_problem, refused_without_change
from tests.protocols.acme.raw import Account, b64, csr_der, ec_key, rsa_key, sign_flattened


@pytest.fixture(scope="module")
def account(acme: AcmeHarness) -> Account:
    return acme.client.new_account()


@pytest.fixture(scope="module")
def pending_order(acme: AcmeHarness, account: Account) -> dict[str, Any]:
    response = acme.client.new_order(account, ["pending.bad.example.test"])
    assert response.status_code == 201
    return {**response.json(), "url": response.headers["Location"]}


def _protected(acme: AcmeHarness, url: str, account: Account, **fields: Any) -> dict[str, Any]:
    return {"alg": "ES256", "kid": account.kid, "nonce": acme.client.nonce(), "url": url, **fields}


# -- badSignatureAlgorithm ------------------------------------------------------------------


def test_alg_none_is_refused(acme: AcmeHarness, account: Account, pending_order: dict[str, Any]) -> None:
    protected = _protected(acme, pending_order["url"], account, alg="none")
    body = {"protected": b64(json.dumps(protected).encode()), "payload": "", "signature": ""}
    response = refused_without_change(
        acme,
        lambda: acme.client.post_raw(pending_order["url"], json.dumps(body).encode()),
        "badSignatureAlgorithm",
        400,
    )
    assert "ES256" in response.json()["algorithms"]


def test_hs256_is_refused(acme: AcmeHarness, account: Account, pending_order: dict[str, Any]) -> None:
    import hashlib
    import hmac

    protected = _protected(acme, pending_order["url"], account, alg="HS256")
    p64 = b64(json.dumps(protected).encode())
    mac = hmac.new(b"secret", f"{p64}.".encode(), hashlib.sha256).digest()
    body = {"protected": p64, "payload": "", "signature": b64(mac)}
    refused_without_change(
        acme,
        lambda: acme.client.post_raw(pending_order["url"], json.dumps(body).encode()),
        "badSignatureAlgorithm",
        400,
    )


@pytest.mark.parametrize("alg", ["EdDSA", "ES256K", "RS1", ""])
def test_unsupported_alg_is_refused(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any], alg: str
) -> None:
    protected = _protected(acme, pending_order["url"], account, alg=alg)
    body = {"protected": b64(json.dumps(protected).encode()), "payload": "", "signature": b64(b"x" * 64)}
    refused_without_change(
        acme,
        lambda: acme.client.post_raw(pending_order["url"], json.dumps(body).encode()),
        "badSignatureAlgorithm",
        400,
    )


def test_alg_that_does_not_fit_the_key_is_refused(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any]
) -> None:
    refused_without_change(
        acme,
        lambda: acme.client.post(pending_order["url"], b"", account.key, kid=account.kid, alg="ES384"),
        "badSignatureAlgorithm",
        400,
    )


# -- malformed --------------------------------------------------------------------------------


def test_jwk_and_kid_together_are_malformed(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any]
) -> None:
    jwk = account.key.public_key().to_partial_json()
    refused_without_change(
        acme,
        lambda: acme.client.post(
            pending_order["url"], b"", account.key, kid=account.kid, protected_extra={"jwk": jwk}
        ),
        "malformed",
        400,
    )


def test_neither_jwk_nor_kid_is_malformed(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any]
) -> None:
    protected = {"alg": "ES256", "nonce": acme.client.nonce(), "url": pending_order["url"]}
    body = sign_flattened(account.key, protected, b"")
    refused_without_change(
        acme, lambda: acme.client.post_raw(pending_order["url"], json.dumps(body).encode()), "malformed", 400
    )


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_wrong_content_type_is_malformed(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any], content_type: str
) -> None:
    refused_without_change(
        acme,
        lambda: acme.client.post(
            pending_order["url"], b"", account.key, kid=account.kid, content_type=content_type
        ),
        "malformed",
        415,
    )


@pytest.mark.parametrize("part", ["protected", "payload", "signature"])
def test_bad_base64url_is_malformed(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any], part: str
) -> None:
    body = sign_flattened(account.key, _protected(acme, pending_order["url"], account), b"")
    body[part] = body[part][:-2] + "+/" if body[part] else "a=="
    refused_without_change(
        acme, lambda: acme.client.post_raw(pending_order["url"], json.dumps(body).encode()), "malformed", 400
    )


def test_unprotected_header_is_malformed(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any]
) -> None:
    body: dict[str, Any] = sign_flattened(account.key, _protected(acme, pending_order["url"], account), b"")
    body["header"] = {"kid": account.kid}
    refused_without_change(
        acme, lambda: acme.client.post_raw(pending_order["url"], json.dumps(body).encode()), "malformed", 400
    )


def test_several_signatures_are_malformed(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any]
) -> None:
    first = sign_flattened(account.key, _protected(acme, pending_order["url"], account), b"")
    second = sign_flattened(account.key, _protected(acme, pending_order["url"], account), b"")
    body = {
        "payload": "",
        "signatures": [{k: v for k, v in s.items() if k != "payload"} for s in (first, second)],
    }
    refused_without_change(
        acme, lambda: acme.client.post_raw(pending_order["url"], json.dumps(body).encode()), "malformed", 400
    )


def test_url_header_must_equal_request_url(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any]
) -> None:
    refused_without_change(
        acme,
        lambda: acme.client.post(
            pending_order["url"], b"", account.key, kid=account.kid, url_header=pending_order["finalize"]
        ),
        "malformed",
        400,
    )
    refused_without_change(
        acme,
        lambda: acme.client.post(pending_order["url"], b"", account.key, kid=account.kid, url_header=None),
        "malformed",
        400,
    )


def test_post_as_get_with_a_body_is_malformed(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any]
) -> None:
    refused_without_change(
        acme,
        lambda: acme.client.post(pending_order["url"], {}, account.key, kid=account.kid),
        "malformed",
        400,
    )


def test_oversized_body_is_malformed(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any]
) -> None:
    refused_without_change(
        acme,
        lambda: acme.client.post(
            pending_order["url"], {"padding": "x" * 70_000}, account.key, kid=account.kid
        ),
        "malformed",
        413,
    )


def test_bad_signature_is_malformed(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any]
) -> None:
    body = sign_flattened(ec_key(), _protected(acme, pending_order["url"], account), b"")
    refused_without_change(
        acme, lambda: acme.client.post_raw(pending_order["url"], json.dumps(body).encode()), "malformed", 400
    )


def test_body_that_is_not_json_is_malformed(acme: AcmeHarness, pending_order: dict[str, Any]) -> None:
    refused_without_change(
        acme, lambda: acme.client.post_raw(pending_order["url"], b"{not json"), "malformed", 400
    )


# -- badNonce -------------------------------------------------------------------------------


def _fresh_nonce_works(acme: AcmeHarness, account: Account, url: str, nonce: str) -> None:
    response = acme.client.post(url, b"", account.key, kid=account.kid, nonce=nonce)
    assert response.status_code == 200, response.text


def test_missing_nonce(acme: AcmeHarness, account: Account, pending_order: dict[str, Any]) -> None:
    response = refused_without_change(
        acme,
        lambda: acme.client.post(pending_order["url"], b"", account.key, kid=account.kid, nonce=None),
        "badNonce",
        400,
    )
    _fresh_nonce_works(acme, account, pending_order["url"], response.headers["Replay-Nonce"])


def test_reused_nonce(acme: AcmeHarness, account: Account, pending_order: dict[str, Any]) -> None:
    nonce = acme.client.nonce()
    first = acme.client.post(pending_order["url"], b"", account.key, kid=account.kid, nonce=nonce)
    assert first.status_code == 200
    response = refused_without_change(
        acme,
        lambda: acme.client.post(pending_order["url"], b"", account.key, kid=account.kid, nonce=nonce),
        "badNonce",
        400,
    )
    assert_problem(response, "badNonce", 400, sent_nonce=nonce)
    _fresh_nonce_works(acme, account, pending_order["url"], response.headers["Replay-Nonce"])


def test_expired_nonce(acme: AcmeHarness, account: Account, pending_order: dict[str, Any]) -> None:
    nonce = acme.client.nonce()
    acme.clock.advance(acme.platform.settings.acme.nonce_lifetime + dt.timedelta(seconds=1))
    response = refused_without_change(
        acme,
        lambda: acme.client.post(pending_order["url"], b"", account.key, kid=account.kid, nonce=nonce),
        "badNonce",
        400,
    )
    _fresh_nonce_works(acme, account, pending_order["url"], response.headers["Replay-Nonce"])


def test_made_up_nonce(acme: AcmeHarness, account: Account, pending_order: dict[str, Any]) -> None:
    refused_without_change(
        acme,
        lambda: acme.client.post(pending_order["url"], b"", account.key, kid=account.kid, nonce="bm9wZQ"),
        "badNonce",
        400,
    )


# -- badPublicKey ---------------------------------------------------------------------------


def test_rsa_under_2048_bits_is_refused(acme: AcmeHarness) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from josepy.jwk import JWKRSA

    weak = JWKRSA(key=rsa.generate_private_key(65537, 1024))
    refused_without_change(
        acme,
        lambda: acme.client.post(acme.directory["newAccount"], {"termsOfServiceAgreed": True}, weak),
        "badPublicKey",
        400,
    )


@pytest.mark.parametrize("crv", ["P-192", "secp256k1", "Ed25519"])
def test_unsupported_curves_are_refused(acme: AcmeHarness, crv: str) -> None:
    jwk = {"kty": "EC", "crv": crv, "x": b64(b"\x01" * 32), "y": b64(b"\x02" * 32)}
    protected = {
        "alg": "ES256",
        "jwk": jwk,
        "nonce": acme.client.nonce(),
        "url": acme.directory["newAccount"],
    }
    body = {
        "protected": b64(json.dumps(protected).encode()),
        "payload": b64(b'{"termsOfServiceAgreed": true}'),
        "signature": b64(b"\x00" * 64),
    }
    refused_without_change(
        acme,
        lambda: acme.client.post_raw(acme.directory["newAccount"], json.dumps(body).encode()),
        "badPublicKey",
        400,
    )


# -- accountDoesNotExist and unauthorized ---------------------------------------------------


def test_unknown_kid(acme: AcmeHarness, pending_order: dict[str, Any]) -> None:
    ghost = Account(ec_key(), f"{acme.base_url}/acme/acct/no-such-account")
    refused_without_change(
        acme, lambda: acme.client.post_as_get(ghost, pending_order["url"]), "accountDoesNotExist", 400
    )


def test_only_return_existing_for_a_new_key(acme: AcmeHarness) -> None:
    refused_without_change(
        acme,
        lambda: acme.client.post(acme.directory["newAccount"], {"onlyReturnExisting": True}, ec_key()),
        "accountDoesNotExist",
        400,
    )


def test_another_accounts_order_is_unauthorized(acme: AcmeHarness, pending_order: dict[str, Any]) -> None:
    other = acme.client.new_account()
    refused_without_change(
        acme, lambda: acme.client.post_as_get(other, pending_order["url"]), "unauthorized", 403
    )
    refused_without_change(
        acme, lambda: acme.client.post_as_get(other, pending_order["authorizations"][0]), "unauthorized", 403
    )


def test_deactivated_account_is_unauthorized(acme: AcmeHarness) -> None:
    gone = acme.client.new_account(rsa_key())
    response = acme.client.post(gone.kid, {"status": "deactivated"}, gone.key, kid=gone.kid)
    assert response.status_code == 200 and response.json()["status"] == "deactivated"
    refused_without_change(
        acme, lambda: acme.client.new_order(gone, ["gone.example.test"]), "unauthorized", 403
    )


# -- rejectedIdentifier and orders ----------------------------------------------------------


def test_rejected_identifiers_have_one_subproblem_each(acme: AcmeHarness, account: Account) -> None:
    idents = [
        {"type": "dns", "value": "ok.example.test"},
        {"type": "dns", "value": "bad..example.test"},
        {"type": "dns", "value": "10.0.0.1"},
        {"type": "dns", "value": "a.*.example.test"},
    ]
    response = refused_without_change(
        acme,
        lambda: acme.client.post(
            acme.directory["newOrder"], {"identifiers": idents}, account.key, kid=account.kid
        ),
        "rejectedIdentifier",
        400,
    )
    subs = response.json()["subproblems"]
    assert [s["identifier"]["value"] for s in subs] == ["bad..example.test", "10.0.0.1", "a.*.example.test"]
    assert all(s["type"].endswith(":rejectedIdentifier") for s in subs)


def test_unsupported_identifier_type(acme: AcmeHarness, account: Account) -> None:
    idents = [{"type": "email", "value": "a@example.test"}]
    response = refused_without_change(
        acme,
        lambda: acme.client.post(
            acme.directory["newOrder"], {"identifiers": idents}, account.key, kid=account.kid
        ),
        "unsupportedIdentifier",
        400,
    )
    assert response.json()["subproblems"][0]["identifier"] == {"type": "email", "value": "a@example.test"}


def test_finalize_before_ready_is_order_not_ready(
    acme: AcmeHarness, account: Account, pending_order: dict[str, Any]
) -> None:
    csr = b64(csr_der(["pending.bad.example.test"]))
    refused_without_change(
        acme,
        lambda: acme.client.post(pending_order["finalize"], {"csr": csr}, account.key, kid=account.kid),
        "orderNotReady",
        403,
    )


@pytest.mark.parametrize(
    "names",
    [["csr.bad.example.test", "extra.example.test"], ["other.example.test"], []],
    ids=["extra-name", "wrong-name", "no-name"],
)
def test_csr_must_name_exactly_the_order(acme: AcmeHarness, account: Account, names: list[str]) -> None:
    _, order = acme.ready_order(account, ["csr.bad.example.test"])
    csr = b64(csr_der(names, cn=None) if names else csr_der([], cn=None))
    refused_without_change(
        acme,
        lambda: acme.client.post(order["finalize"], {"csr": csr}, account.key, kid=account.kid),
        "badCSR",
        400,
    )


def test_csr_with_a_weak_key_is_bad(acme: AcmeHarness, account: Account) -> None:
    _, order = acme.ready_order(account, ["weak.bad.example.test"])
    csr = b64(csr_der(["weak.bad.example.test"], ec.generate_private_key(ec.SECP256K1())))
    refused_without_change(
        acme,
        lambda: acme.client.post(order["finalize"], {"csr": csr}, account.key, kid=account.kid),
        "badCSR",
        400,
    )


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_csr_for_the_account_key_is_bad(acme: AcmeHarness, key_type: str) -> None:
    # RFC 8555 section 11.1: the account key is never also a certificate's key.
    raw_key = (
        ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else rsa.generate_private_key(65537, 2048)
    )
    owner = acme.client.new_account(JWKEC(key=raw_key) if key_type == "ec" else JWKRSA(key=raw_key))
    name = f"account-key-{key_type}.bad.example.test"
    order_url, order = acme.ready_order(owner, [name])
    csr = b64(csr_der([name], raw_key))
    response = refused_without_change(
        acme,
        lambda: acme.client.post(order["finalize"], {"csr": csr}, owner.key, kid=owner.kid),
        "badCSR",
        400,
    )
    assert "account" in response.json()["detail"]
    assert acme.get(owner, order_url)["status"] == "ready"
    # The same order still finalizes with a key of its own.
    assert acme.finalize(owner, order, [name]).status_code == 200


def test_csr_that_is_not_a_csr_is_bad(acme: AcmeHarness, account: Account) -> None:
    _, order = acme.ready_order(account, ["junk.bad.example.test"])
    refused_without_change(
        acme,
        lambda: acme.client.post(order["finalize"], {"csr": b64(b"junk")}, account.key, kid=account.kid),
        "badCSR",
        400,
    )


# -- revocation ---------------------------------------------------------------------------------


def _issued(acme: AcmeHarness, account: Account, name: str) -> bytes:
    _, order = acme.ready_order(account, [name])
    done = acme.finalize(account, order, [name])
    assert done.status_code == 200, done.text
    pem = acme.client.post_as_get(account, done.json()["certificate"]).content
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificates(pem)[0].public_bytes(Encoding.DER)


@pytest.mark.parametrize("reason", [2, 6, 7, 8, 10, 11, -1, "keyCompromise"])
def test_bad_revocation_reason(acme: AcmeHarness, account: Account, reason: object) -> None:
    der = _issued(acme, account, f"reason{abs(hash(reason)) % 1000}.bad.example.test")
    payload = {"certificate": b64(der), "reason": reason}
    refused_without_change(
        acme,
        lambda: acme.client.post(acme.directory["revokeCert"], payload, account.key, kid=account.kid),
        "badRevocationReason",
        400,
    )


def test_already_revoked(acme: AcmeHarness, account: Account) -> None:
    der = _issued(acme, account, "twice.bad.example.test")
    payload = {"certificate": b64(der), "reason": 4}
    first = acme.client.post(acme.directory["revokeCert"], payload, account.key, kid=account.kid)
    assert first.status_code == 200, first.text
    refused_without_change(
        acme,
        lambda: acme.client.post(acme.directory["revokeCert"], payload, account.key, kid=account.kid),
        "alreadyRevoked",
        400,
    )


def test_revocation_by_a_stranger_is_unauthorized(acme: AcmeHarness, account: Account) -> None:
    der = _issued(acme, account, "mine.bad.example.test")
    stranger = acme.client.new_account()
    payload = {"certificate": b64(der)}
    refused_without_change(
        acme,
        lambda: acme.client.post(acme.directory["revokeCert"], payload, stranger.key, kid=stranger.kid),
        "unauthorized",
        403,
    )
    refused_without_change(
        acme, lambda: acme.client.post(acme.directory["revokeCert"], payload, ec_key()), "unauthorized", 403
    )


def test_revocation_signed_by_the_certificate_key_and_key_compromise_blocks_it(
    acme: AcmeHarness, account: Account
) -> None:
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    name = "compromised.bad.example.test"
    _, order = acme.ready_order(account, [name])
    done = acme.finalize(account, order, [name], key=leaf_key)
    assert done.status_code == 200, done.text
    pem = acme.client.post_as_get(account, done.json()["certificate"]).content
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificates(pem)[0].public_bytes(Encoding.DER)
    revoked = acme.client.post(
        acme.directory["revokeCert"], {"certificate": b64(der), "reason": 1}, JWKEC(key=leaf_key)
    )
    assert revoked.status_code == 200, revoked.text
    # The key is blocked: a new order for it is refused at finalize, and the order stays ready.
    order_url, again = acme.ready_order(account, [name])
    csr = b64(csr_der([name], leaf_key))
    response = refused_without_change(
        acme,
        lambda: acme.client.post(again["finalize"], {"csr": csr}, account.key, kid=account.kid),
        "badCSR",
        400,
    )
    assert "keyCompromise" in response.json()["detail"]
    assert acme.get(account, order_url)["status"] == "ready"

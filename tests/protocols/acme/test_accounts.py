"""Accounts: idempotent creation, contacts, update, orders list, deactivation, key rollover."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.protocols.acme.conftest import AcmeHarness
from tests.protocols.acme.problems_check import refused_without_change
from tests.protocols.acme.raw import Account, ec_key, rsa_key, sign_flattened


def test_same_key_returns_the_existing_account(acme: AcmeHarness) -> None:
    key = ec_key()
    first = acme.client.post(acme.directory["newAccount"], {"termsOfServiceAgreed": True}, key)
    again = acme.client.post(acme.directory["newAccount"], {"onlyReturnExisting": True}, key)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["Location"] == first.headers["Location"]


@pytest.mark.parametrize(
    ("contact", "kind"),
    [
        (["tel:+1555"], "unsupportedContact"),
        (["mailto:not-an-address"], "invalidContact"),
        (["mailto:a@example.test?subject=x"], "invalidContact"),
        ("mailto:a@example.test", "malformed"),
    ],
)
def test_bad_contacts(acme: AcmeHarness, contact: Any, kind: str) -> None:
    refused_without_change(
        acme,
        lambda: acme.client.post(acme.directory["newAccount"], {"contact": contact}, ec_key()),
        kind,
        400,
    )


def test_update_contacts_and_list_orders(acme: AcmeHarness) -> None:
    account = acme.client.new_account(contact=["mailto:ops@example.test"])
    updated = acme.client.post(
        account.kid, {"contact": ["mailto:pki@example.test"]}, account.key, kid=account.kid
    )
    assert updated.status_code == 200
    assert updated.json()["contact"] == ["mailto:pki@example.test"]
    order = acme.client.new_order(account, ["listed.acct.example.test"]).headers["Location"]
    orders = acme.get(account, updated.json()["orders"])
    assert orders["orders"] == [order]


def test_cannot_update_another_account(acme: AcmeHarness) -> None:
    mine, other = acme.client.new_account(), acme.client.new_account()
    refused_without_change(
        acme,
        lambda: acme.client.post(other.kid, {"status": "deactivated"}, mine.key, kid=mine.kid),
        "unauthorized",
        403,
    )


def _key_change(
    acme: AcmeHarness,
    account: Account,
    new_key: Any,
    old_key_jwk: dict[str, Any] | None = None,
    account_url: str | None = None,
    inner_url: str | None = None,
) -> Any:
    url = acme.directory["keyChange"]
    inner_payload = {
        "account": account_url or account.kid,
        "oldKey": old_key_jwk or account.key.public_key().to_partial_json(),
    }
    inner = sign_flattened(
        new_key,
        {
            "alg": "ES256" if "EC" in type(new_key).__name__ else "RS256",
            "jwk": new_key.public_key().to_partial_json(),
            "url": inner_url or url,
        },
        json.dumps(inner_payload).encode(),
    )
    return acme.client.post(url, inner, account.key, kid=account.kid)


def test_key_rollover(acme: AcmeHarness) -> None:
    account = acme.client.new_account()
    new_key = rsa_key()
    response = _key_change(acme, account, new_key)
    assert response.status_code == 200, response.text
    rolled = Account(new_key, account.kid)
    assert acme.client.post_as_get(rolled, account.kid).status_code == 200
    # The account's key is RSA now: the old EC key's ES256 no longer fits it.
    old = acme.client.post_as_get(account, account.kid)
    assert old.status_code == 400 and old.json()["type"].endswith(":badSignatureAlgorithm")


def test_bad_key_rollovers_change_nothing(acme: AcmeHarness) -> None:
    account = acme.client.new_account()
    taken = acme.client.new_account()
    new_key = ec_key()
    refused_without_change(acme, lambda: _key_change(acme, account, taken.key), "malformed", 409)
    refused_without_change(
        acme,
        lambda: _key_change(acme, account, new_key, old_key_jwk=ec_key().public_key().to_partial_json()),
        "malformed",
        400,
    )
    refused_without_change(
        acme, lambda: _key_change(acme, account, new_key, account_url=taken.kid), "malformed", 400
    )
    refused_without_change(
        acme,
        lambda: _key_change(acme, account, new_key, inner_url=acme.directory["newOrder"]),
        "malformed",
        400,
    )
    inner_with_nonce = sign_flattened(
        new_key,
        {
            "alg": "ES256",
            "jwk": new_key.public_key().to_partial_json(),
            "url": acme.directory["keyChange"],
            "nonce": acme.client.nonce(),
        },
        json.dumps({"account": account.kid, "oldKey": account.key.public_key().to_partial_json()}).encode(),
    )
    refused_without_change(
        acme,
        lambda: acme.client.post(acme.directory["keyChange"], inner_with_nonce, account.key, kid=account.kid),
        "malformed",
        400,
    )
    assert acme.client.post_as_get(account, account.kid).status_code == 200

"""External account binding on a server with ``acme.require_eab``: accounts without a valid
binding are refused, and a bound account issues under its team's name policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from acme import client, errors, messages
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import jwa
from josepy.jwk import JWKEC
from sqlalchemy import text

from tests.protocols.acme.conftest import AcmeHarness, build_harness
from tests.protocols.acme.peers import ChallTestSrv
from tests.protocols.acme.problems_check import refused_without_change
from tests.protocols.acme.raw import Account, b64, ec_key


@pytest.fixture(scope="module")
def eab_acme(tmp_path_factory: pytest.TempPathFactory, challtestsrv: ChallTestSrv) -> Iterator[AcmeHarness]:
    yield from build_harness(
        tmp_path_factory.mktemp("eab"), challtestsrv, extra_config="require_eab = true\n"
    )


def _binding(kid: str, hmac_key: bytes, account_key: Any, url: str, alg: str = "HS256") -> dict[str, str]:
    protected = b64(json.dumps({"alg": alg, "kid": kid, "url": url}).encode())
    payload = b64(json.dumps(account_key.public_key().to_partial_json()).encode())
    mac = hmac.new(hmac_key, f"{protected}.{payload}".encode(), hashlib.sha256).digest()
    return {"protected": protected, "payload": payload, "signature": b64(mac)}


def _mint(acme: AcmeHarness, team: str, *patterns: str) -> tuple[str, bytes]:
    minted = acme.platform.acme.create_eab_key(team, list(patterns), actor="test")
    return minted.record.kid, base64.urlsafe_b64decode(minted.hmac_key_b64 + "==")


def _register(acme: AcmeHarness, key: Any, binding: dict[str, str] | None) -> Any:
    payload: dict[str, Any] = {"termsOfServiceAgreed": True}
    if binding is not None:
        payload["externalAccountBinding"] = binding
    return acme.client.post(acme.directory["newAccount"], payload, key)


def test_directory_says_eab_is_required(eab_acme: AcmeHarness) -> None:
    assert eab_acme.directory["meta"]["externalAccountRequired"] is True


def test_account_without_binding_is_refused(eab_acme: AcmeHarness) -> None:
    refused_without_change(
        eab_acme, lambda: _register(eab_acme, ec_key(), None), "externalAccountRequired", 403
    )


def test_bad_bindings_are_refused(eab_acme: AcmeHarness) -> None:
    kid, mac_key = _mint(eab_acme, "web", "*.web.example.test")
    key = ec_key()
    url = eab_acme.directory["newAccount"]
    cases = [
        (_binding(kid, b"wrong key" * 4, key, url), "unauthorized", 403),
        (_binding("kid-unknown", mac_key, key, url), "unauthorized", 403),
        (_binding(kid, mac_key, ec_key(), url), "malformed", 400),
        (_binding(kid, mac_key, key, eab_acme.directory["newOrder"]), "malformed", 400),
        ({"protected": "x"}, "malformed", 400),
    ]
    for binding, kind, status in cases:
        refused_without_change(eab_acme, lambda b=binding: _register(eab_acme, key, b), kind, status)
    # The key is still unbound: a correct binding works afterwards.
    assert _register(eab_acme, key, _binding(kid, mac_key, key, url)).status_code == 201


def test_bound_account_issues_under_its_team(eab_acme: AcmeHarness) -> None:
    kid, mac_key = _mint(eab_acme, "payments", "**.pay.example.test")
    key = ec_key()
    response = _register(eab_acme, key, _binding(kid, mac_key, key, eab_acme.directory["newAccount"]))
    assert response.status_code == 201, response.text
    assert response.json()["externalAccountBinding"] == {"kid": kid}
    account = Account(key, response.headers["Location"])
    refused = refused_without_change(
        eab_acme,
        lambda: eab_acme.client.new_order(account, ["api.pay.example.test", "evil.example.test"]),
        "rejectedIdentifier",
        400,
    )
    assert [s["identifier"]["value"] for s in refused.json()["subproblems"]] == ["evil.example.test"]
    _, order = eab_acme.ready_order(account, ["api.eu.pay.example.test"])
    done = eab_acme.finalize(account, order, ["api.eu.pay.example.test"])
    assert done.status_code == 200, done.text
    pem = eab_acme.client.post_as_get(account, done.json()["certificate"]).content
    from cryptography import x509

    serial = format(x509.load_pem_x509_certificates(pem)[0].serial_number, "x")
    assert eab_acme.platform.inventory.find(serial).team == "payments"


def test_a_binding_key_binds_one_account(eab_acme: AcmeHarness) -> None:
    kid, mac_key = _mint(eab_acme, "ops")
    url = eab_acme.directory["newAccount"]
    first = ec_key()
    assert _register(eab_acme, first, _binding(kid, mac_key, first, url)).status_code == 201
    second = ec_key()
    refused_without_change(
        eab_acme,
        lambda: _register(eab_acme, second, _binding(kid, mac_key, second, url)),
        "unauthorized",
        403,
    )


def test_eab_mac_algorithm_must_be_hmac(eab_acme: AcmeHarness, tmp_path: Path) -> None:
    kid, mac_key = _mint(eab_acme, "web")
    key = ec_key()
    binding = _binding(kid, mac_key, key, eab_acme.directory["newAccount"], alg="none")
    refused_without_change(eab_acme, lambda: _register(eab_acme, key, binding), "badSignatureAlgorithm", 400)


def test_acme_library_binds_once_and_the_hmac_key_is_wiped(eab_acme: AcmeHarness) -> None:
    # Given an EAB key handed to a team, used by certbot's acme library
    minted = eab_acme.platform.acme.create_eab_key("lib", [], actor="test")
    directory_url = eab_acme.directory["newAccount"].rsplit("/", 1)[0] + "/directory"

    def register() -> messages.RegistrationResource:
        key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        net = client.ClientNetwork(key, alg=jwa.ES256, user_agent="certfleet-tests")
        directory = client.ClientV2.get_directory(directory_url, net)
        binding = messages.ExternalAccountBinding.from_data(
            account_public_key=key.public_key(),
            kid=minted.record.kid,
            hmac_key=minted.hmac_key_b64,
            directory=directory,
        )
        registration = messages.NewRegistration.from_data(
            terms_of_service_agreed=True, external_account_binding=binding
        )
        return client.ClientV2(directory, net).new_account(registration)

    # When it registers an account
    account = register()

    # Then the account is bound, and the HMAC key is gone from the database
    assert account.body.status == "valid"
    with eab_acme.platform.database.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT hmac_key, account_id FROM acme_eab_keys WHERE kid = :kid"),
            {"kid": minted.record.kid},
        ).one()
    assert stored.hmac_key is None and stored.account_id is not None
    # And a second account with the same kid and key is refused as unauthorized
    with pytest.raises(errors.Error) as refused:
        register()
    assert refused.value.typ == "urn:ietf:params:acme:error:unauthorized"
    assert "already bound" in str(refused.value.detail)

"""revokeCert limits that protect a certificate's holder from an account that merely controls
its names: keyCompromise needs the certificate's key, and an agent's identity certificate is
revoked over ACME by the agent alone (signing with its key)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from josepy.jwk import JWKEC

from certfleet.inventory import Status
from tests.protocols.acme.conftest import AcmeHarness, build_harness
from tests.protocols.acme.peers import ChallTestSrv
from tests.protocols.acme.problems_check import refused_without_change
from tests.protocols.acme.raw import Account, b64
from tests.x509.factories import build_csr, pem


@pytest.fixture(scope="module")
def account(acme: AcmeHarness) -> Account:
    return acme.client.new_account()


@pytest.fixture
def any_db(tmp_path: Path, challtestsrv: ChallTestSrv, db_url: str) -> Iterator[AcmeHarness]:
    """A harness of its own on SQLite and on PostgreSQL, for the refusals that read the
    stored record (its tags, its order, the holder's authorizations)."""
    yield from build_harness(tmp_path, challtestsrv, db_url=db_url)


def _issue(acme: AcmeHarness, account: Account, name: str) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    _, order = acme.ready_order(account, [name])
    done = acme.finalize(account, order, [name], key=leaf_key)
    assert done.status_code == 200, done.text
    chain = acme.client.post_as_get(account, done.json()["certificate"]).content
    return x509.load_pem_x509_certificates(chain)[0].public_bytes(Encoding.DER), leaf_key


def _status(acme: AcmeHarness, der: bytes) -> Status:
    serial = format(x509.load_der_x509_certificate(der).serial_number, "x")
    return acme.platform.inventory.find(serial).status


def _revoke(acme: AcmeHarness, der: bytes, reason: int, signer: Account | Any) -> Any:
    payload = {"certificate": b64(der), "reason": reason}
    if isinstance(signer, Account):
        return acme.client.post(acme.directory["revokeCert"], payload, signer.key, kid=signer.kid)
    return acme.client.post(acme.directory["revokeCert"], payload, JWKEC(key=signer))


def test_key_compromise_from_an_authorization_holder_needs_the_certificate_key(any_db: AcmeHarness) -> None:
    acme = any_db
    account = acme.client.new_account()
    # Given a certificate ordered by one account, and another account that has proven
    # control of its name
    name = "kc-holder.rev.example.test"
    der, leaf_key = _issue(acme, account, name)
    holder = acme.client.new_account()
    acme.ready_order(holder, [name])
    # When the holder claims keyCompromise with its own account key, it is refused and
    # nothing changes (the key is not blocked, the certificate is not revoked)
    response = refused_without_change(acme, lambda: _revoke(acme, der, 1, holder), "unauthorized", 403)
    assert "certificate's key" in response.json()["detail"]
    assert _status(acme, der) is not Status.REVOKED
    # Then signing with the certificate's key proves the compromise
    assert _revoke(acme, der, 1, leaf_key).status_code == 200
    assert _status(acme, der) is Status.REVOKED


def test_an_authorization_holder_may_still_revoke_for_another_reason(
    acme: AcmeHarness, account: Account
) -> None:
    name = "superseded-holder.rev.example.test"
    der, _ = _issue(acme, account, name)
    holder = acme.client.new_account()
    acme.ready_order(holder, [name])
    response = _revoke(acme, der, 4, holder)
    assert response.status_code == 200, response.text
    assert _status(acme, der) is Status.REVOKED


def test_the_ordering_account_may_say_key_compromise(acme: AcmeHarness, account: Account) -> None:
    der, _ = _issue(acme, account, "kc-owner.rev.example.test")
    response = _revoke(acme, der, 1, account)
    assert response.status_code == 200, response.text
    assert _status(acme, der) is Status.REVOKED


@pytest.mark.parametrize("reason", [0, 1])
def test_an_agent_identity_is_revoked_over_acme_only_by_the_agent(any_db: AcmeHarness, reason: int) -> None:
    acme = any_db
    account = acme.client.new_account()
    # Given an enrolled agent, and an account that has proven control of the agent's name
    host = f"agent{reason}.rev.example.test"
    minted = acme.platform.agents.create_join_token(host, team=None, ttl=dt.timedelta(hours=1), actor="test")
    agent_key = ec.generate_private_key(ec.SECP256R1())
    enrolment = acme.platform.agents.enroll(minted.token, pem(build_csr(agent_key, (host,), host)))
    der = enrolment.issued.certificate.public_bytes(Encoding.DER)
    acme.ready_order(account, [host])
    # When that account asks to revoke the identity, it is refused and nothing changes
    response = refused_without_change(acme, lambda: _revoke(acme, der, reason, account), "unauthorized", 403)
    assert "agent" in response.json()["detail"]
    assert _status(acme, der) is not Status.REVOKED
    # Then the agent itself, signing with its identity key, may revoke it
    assert _revoke(acme, der, reason, agent_key).status_code == 200
    assert _status(acme, der) is Status.REVOKED

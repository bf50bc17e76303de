"""One policy, every enrolment path (issue 14's done-when: "SCEP and EST issuance obeys the
same policy rules as ACME and REST"): the same rules refuse the same request over REST (the
issuance service behind ``POST /api/v1/certificates``), ACME (finalize, over HTTP), SCEP and
EST, each naming the rule in its own protocol's error, and let the same request through
once it complies. The rules: a key-type rule for everyone and a name rule for team ``iot``,
the team of the SCEP challenge and the EST credential."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from certfleet.access.scep import EnrolmentRefused, Refusal
from certfleet.ca import IssuanceRequest
from certfleet.errors import CertfleetError
from certfleet.inventory import CertificateQuery, Source
from tests.lifecycle.fleet import est_enrol, scep_enrol
from tests.protocols.acme.conftest import AcmeHarness

POLICY = """\
rules:
  - name: fleet-keys
    key_types: [ec-p256, rsa-3072]
  - name: iot-names
    team: iot
    allowed_names: ["*.iot.example.test"]
"""


@pytest.fixture(scope="module")
def keys() -> dict[int, rsa.RSAPrivateKey]:
    return {size: rsa.generate_private_key(public_exponent=65537, key_size=size) for size in (2048, 3072)}


@pytest.fixture(scope="module", autouse=True)
def _policy(acme: AcmeHarness) -> None:
    acme.platform.policy.apply(POLICY, source="p.yaml", actor="test")


def _rest(acme: AcmeHarness, name: str, key: rsa.RSAPrivateKey, team: str) -> str | None:
    request = IssuanceRequest("tls-server", key.public_key(), (name,), name)
    try:
        acme.platform.issuance.issue(request, actor="test", team=team)
    except CertfleetError as refused:
        return refused.detail
    return None


def _acme(acme: AcmeHarness, name: str, key: rsa.RSAPrivateKey) -> str | None:
    account = acme.client.new_account()
    _, order = acme.ready_order(account, [name])
    response = acme.finalize(account, order, [name], key)
    if response.status_code == 200:
        return None
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"] == "urn:ietf:params:acme:error:badCSR", problem
    return str(problem["detail"])


def _scep(acme: AcmeHarness, name: str, key: rsa.RSAPrivateKey) -> str | None:
    try:
        scep_enrol(acme.platform, name, team="iot", key=key)  # asserts ISSUED when not refused
    except EnrolmentRefused as refused:
        assert refused.refusal in (Refusal.POLICY, Refusal.NAMES)
        return refused.detail
    return None


def _est(acme: AcmeHarness, name: str, key: rsa.RSAPrivateKey) -> str | None:
    try:
        est_enrol(acme.platform, name, team="iot", key=key)
    except CertfleetError as refused:
        return refused.detail
    return None


def _every_path(acme: AcmeHarness, prefix: str, key: rsa.RSAPrivateKey) -> dict[str, str | None]:
    """The refusal each path gives (None: issued) for ``{prefix}{1..4}.iot.example.test``."""
    return {
        "rest": _rest(acme, f"{prefix}1.iot.example.test", key, "iot"),
        "acme": _acme(acme, f"{prefix}2.iot.example.test", key),
        "scep": _scep(acme, f"{prefix}3.iot.example.test", key),
        "est": _est(acme, f"{prefix}4.iot.example.test", key),
    }


def _all_refused(refusals: dict[str, str | None], reason: str) -> None:
    for path, detail in refusals.items():
        assert detail is not None and reason in detail, (path, detail)


def test_a_key_the_policy_refuses_is_refused_alike_by_rest_acme_scep_and_est(
    acme: AcmeHarness, keys: dict[int, rsa.RSAPrivateKey]
) -> None:
    _all_refused(_every_path(acme, "k", keys[2048]), "refused by policy rule 'fleet-keys'")
    # The same requests with a key the rule allows go through on every path
    assert _every_path(acme, "k", keys[3072]) == dict.fromkeys(("rest", "acme", "scep", "est"))
    now = acme.clock.now()
    with acme.platform.store.unit_of_work(read_only=True) as uow:
        issued = {
            name: uow.certificates.query(CertificateQuery(san=name), now)
            for name in ("k1.iot.example.test", "k3.iot.example.test", "k4.iot.example.test")
        }
    assert {name: [(r.source, r.key_size) for r in records] for name, records in issued.items()} == {
        "k1.iot.example.test": [(Source.ISSUED, 3072)],
        "k3.iot.example.test": [(Source.SCEP, 3072)],
        "k4.iot.example.test": [(Source.EST, 3072)],
    }


def test_a_team_name_rule_binds_scep_and_est_as_it_binds_rest(
    acme: AcmeHarness, keys: dict[int, rsa.RSAPrivateKey]
) -> None:
    key = keys[3072]
    refusals = {
        "rest": _rest(acme, "www.example.test", key, "iot"),
        "scep": _scep(acme, "www.example.test", key),
        "est": _est(acme, "www.example.test", key),
    }
    _all_refused(refusals, "refused by policy rule 'iot-names'")
    assert _scep(acme, "cam.iot.example.test", key) is None
    assert _est(acme, "plc.iot.example.test", key) is None


def test_a_key_revoked_for_key_compromise_is_refused_by_every_path(acme: AcmeHarness) -> None:
    # Given a key whose certificate was revoked for keyCompromise
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    request = IssuanceRequest("tls-server", key.public_key(), ("b0.iot.example.test",), "b0.iot.example.test")
    first = acme.platform.issuance.issue(request, actor="test", team="iot")
    acme.platform.revocation.revoke(first.record.serial, "keyCompromise", actor="test")
    # Then no path certifies that key again, each with the same reason
    _all_refused(_every_path(acme, "b", key), "revoked for keyCompromise")

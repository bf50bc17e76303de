"""``POST /api/v1/revocations``: what ``certfleet revoke`` sends to a server. An admin revokes
as the CLI beside the data does (naming the issuer, or giving the certificate); any other
token obeys the scope, team and name patterns of ``/certificates/{serial}/revoke``, and a
refusal records nothing."""

from __future__ import annotations

import pytest

from certfleet.app import Platform
from certfleet.x509 import to_pem
from tests.api.conftest import ApiClient, assert_problem
from tests.api.revoke_fleet import CI_PATTERN, Fleet, build_fleet, snapshot

REVOCATIONS = "/api/v1/revocations"


@pytest.fixture
def fleet(platform: Platform) -> Fleet:
    return build_fleet(platform)


def test_an_admin_revokes_by_serial_issuer_and_certificate_and_learns_what_happened(
    api: ApiClient, fleet: Fleet
) -> None:
    body = {
        "serial": fleet.prod.serial,
        "reason": "keyCompromise",
        "issuer_ca_id": fleet.prod.issuer_ca_id,
        "certificate_pem": to_pem([fleet.prod.certificate()]),
    }
    answer = api.post(REVOCATIONS, token=api.token(), json=body)
    assert answer.status_code == 200, answer.text
    outcome = answer.json()
    assert (outcome["serial"], outcome["reason"], outcome["key_blocked"]) == (
        fleet.prod.serial,
        "keyCompromise",
        True,
    )
    assert outcome["issuer_ca_id"] == fleet.prod.issuer_ca_id
    assert outcome["certificate"]["status"] == "revoked"
    again = api.post(REVOCATIONS, token=api.token(), json={"serial": fleet.prod.serial})
    assert_problem(again, 409, "already revoked")


def test_a_narrow_token_is_refused_as_on_the_certificate_route_and_nothing_is_recorded(
    api: ApiClient, platform: Platform, fleet: Fleet
) -> None:
    ci = api.token(team="web", scope="revoke", allow_names=[CI_PATTERN])
    read = api.token(team="web", scope="read")
    before = snapshot(platform)
    by_certificate = {"serial": fleet.ci.serial, "certificate_pem": to_pem([fleet.ci.certificate()])}
    assert_problem(api.post(REVOCATIONS, token=ci, json=by_certificate), 403, "only an admin token")
    assert_problem(api.post(REVOCATIONS, token=ci, json={"serial": fleet.prod.serial}), 403, "may not revoke")
    assert_problem(
        api.post(REVOCATIONS, token=read, json={"serial": fleet.ci.serial}), 403, "revoke is required"
    )
    assert snapshot(platform) == before
    allowed = api.post(REVOCATIONS, token=ci, json={"serial": fleet.ci.serial, "reason": "superseded"})
    assert allowed.status_code == 200, allowed.text


def test_openapi_documents_the_revocations_path(api: ApiClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    operation = document["paths"][REVOCATIONS]["post"]
    assert operation["summary"] == "Revoke a serial (what certfleet revoke does)"
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RevocationIn")
    assert document["components"]["schemas"]["RevocationIn"]["examples"]
    assert document["components"]["schemas"]["RevocationOut"]["examples"]

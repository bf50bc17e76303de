"""/api/v1/cas: the hierarchy for any token, rotate and the compromise playbook for admins
only, with an explicit confirmation; the answers are the CLI's dicts."""

from __future__ import annotations

from cryptography import x509

from certfleet.app import Platform
from certfleet.services.ca_listing import ca_rows
from tests.api.conftest import ApiClient, assert_problem
from tests.api.test_list import issue

CAS = "/api/v1/cas"


def _intermediate(platform: Platform) -> str:
    return next(r["id"] for r in ca_rows(platform.authorities) if r["role"] == "intermediate" and r["active"])


def test_any_token_lists_and_shows_the_hierarchy_as_the_cli_does(api: ApiClient) -> None:
    reader = api.token("web", "read")
    listed = api.get(CAS, token=reader)
    assert listed.status_code == 200, listed.text
    assert listed.json() == ca_rows(api.platform.authorities)
    assert {r["role"] for r in listed.json()} == {"root", "intermediate"}

    ca_id = _intermediate(api.platform)
    shown = api.get(f"{CAS}/{ca_id}", token=reader)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["id"] == ca_id
    certificate = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    assert certificate.subject.rfc4514_string() == body["subject"]
    assert format(certificate.serial_number, "x") == body["serial"]


def test_unknown_ca_and_missing_token_are_problems(api: ApiClient) -> None:
    assert_problem(api.get(f"{CAS}/nope", token=api.token("web", "read")), 404, "no CA with id 'nope'")
    assert_problem(api.get(CAS), 401, "missing bearer token")


def test_rotate_is_admin_only_and_switches_issuance(api: ApiClient, admin: str) -> None:
    old = _intermediate(api.platform)
    for scope in ("read", "issue"):
        refused = api.post(f"{CAS}/rotate", token=api.token("web", scope, ["*.example.test"]), json={})
        assert_problem(refused, 403, "admin is required")
    assert _intermediate(api.platform) == old  # nothing happened

    rotated = api.post(f"{CAS}/rotate", token=admin, json={"key_type": "ec-p384"})
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["retired"] == [old]
    assert _intermediate(api.platform) == body["new_ca"]["id"] != old
    shown = api.get(f"{CAS}/{body['new_ca']['id']}", token=admin).json()
    assert shown["key"] == "ec-p384"

    assert_problem(api.post(f"{CAS}/rotate", token=admin, json={"key_type": "dsa"}), 400, "unknown key type")
    assert_problem(api.post(f"{CAS}/rotate", token=admin, json={"keytype": "x"}), 422, "unknown field")


def test_compromise_needs_the_ca_id_repeated_and_an_admin(api: ApiClient, admin: str) -> None:
    ca_id = _intermediate(api.platform)
    serial = issue(api.platform, "www.example.test")
    url = f"{CAS}/{ca_id}/compromise"
    narrow = api.token("web", "revoke", ["**.example.test"])
    assert_problem(api.post(url, token=narrow, json={"confirm": ca_id}), 403, "admin is required")
    assert_problem(api.post(url, token=admin, json={}), 422, "confirm: required")
    assert_problem(
        api.post(url, token=admin, json={"confirm": "other"}), 400, "confirm must repeat the CA's id"
    )
    assert_problem(
        api.post(url, token=admin, json={"confirm": ca_id, "deadline": "0"}),
        400,
        "deadline must be at least 1s",
    )
    # Refused requests changed nothing: still the same issuing CA, not revoked.
    assert _intermediate(api.platform) == ca_id

    done = api.post(url, token=admin, json={"confirm": ca_id, "deadline": "12h"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["revoked_ca"] == ca_id
    assert body["new_ca"]["id"] != ca_id
    assert body["campaign"] is not None and body["campaign_deadline_at"] is not None
    items = api.get(f"/api/v1/lifecycle/campaigns/{body['campaign']}/items", token=admin).json()["items"]
    assert [i["serial"] for i in items] == [serial]

    again = api.post(url, token=admin, json={"confirm": ca_id})  # safe to repeat
    assert again.status_code == 200, again.text
    assert again.json()["campaign"] == body["campaign"]


def test_root_cannot_be_compromised_over_the_api(api: ApiClient, admin: str) -> None:
    root = next(r["id"] for r in ca_rows(api.platform.authorities) if r["role"] == "root")
    refused = api.post(f"{CAS}/{root}/compromise", token=admin, json={"confirm": root})
    assert_problem(refused, 400, "a root cannot be revoked")


def test_a_ca_made_a_moment_ago_can_be_compromised(api: ApiClient, admin: str) -> None:
    # The first playbook loads revocation's CA index; the next one, right after a rotation,
    # must find the CA that rotation made (the cached index is reloaded at most once a second).
    first = _intermediate(api.platform)
    assert api.post(f"{CAS}/{first}/compromise", token=admin, json={"confirm": first}).status_code == 200
    fresh = api.post(f"{CAS}/rotate", token=admin, json={}).json()["new_ca"]["id"]
    done = api.post(f"{CAS}/{fresh}/compromise", token=admin, json={"confirm": fresh})
    assert done.status_code == 200, done.text
    assert done.json()["revoked_ca"] == fresh

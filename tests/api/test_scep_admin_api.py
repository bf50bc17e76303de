"""``/api/v1/scep``: an admin creates challenges (the password shown once), lists them (never
the password), and approves or rejects requests held by a manual-approval challenge, with the
service calls ``certfleet scep`` makes; a narrower token is refused with 403 problem+json and
nothing changes."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization

from certfleet.app import Platform
from tests.api.conftest import ApiClient, assert_problem, stored_rows
from tests.conftest import Cli
from tests.protocols.scep.client import (
    Message,
    csr,
    envelope_aes,
    ra_certificate,
    read_cert_rep,
    rsa_key,
    self_signed,
)
from tests.services.snapshot import rows

CHALLENGES = "/api/v1/scep/challenges"
PENDING = "/api/v1/scep/pending"


def _held_request(platform: Platform, password: str, cn: str = "held.example.test") -> str:
    """A PKCSReq sent through the SCEP protocol, as a device sends it: PENDING; its ID."""
    ra = ra_certificate(platform.scep_server.ca_certificates())
    key = rsa_key()
    request = csr(key, cn, challenge=password).public_bytes(serialization.Encoding.DER)
    message = Message("19", envelope_aes(request, ra), self_signed(key), key)
    assert read_cert_rep(platform.scep_server.pki_operation(message.build()), ra).status == "3"
    return message.transaction_id


def test_admin_creates_a_challenge_shown_once_and_never_listed(api: ApiClient, admin: str, cli: Cli) -> None:
    body = {"team": "printers", "names": ["*.lab.example.test"], "uses": 3, "ttl_seconds": 43200}

    response = api.post(CHALLENGES, token=admin, json={**body, "manual_approval": True})

    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    challenge_id, secret = created["password"].split("-")
    assert challenge_id == created["id"] and len(secret) == 32
    assert (created["team"], created["allow_names"], created["uses_left"], created["manual_approval"]) == (
        "printers",
        ["*.lab.example.test"],
        3,
        True,
    )
    listed = api.get(CHALLENGES, token=admin)
    assert listed.status_code == 200 and secret not in listed.text
    assert listed.json() == [{k: v for k, v in created.items() if k != "password"}]
    local = cli("scep", "challenge", "list", "--format", "json")
    assert local.exit_code == 0, local.stderr
    assert listed.json() == json.loads(local.stdout)


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"team": "t", "uses": 0}, 400, "--uses must be at least 1"),
        ({"team": "t", "ttl_seconds": 0}, 400, "--ttl must be positive"),
        ({"team": "t", "profile": "scep-ra"}, 400, "unknown profile 'scep-ra'"),
        ({"team": "t", "names": ["a.*.example.test"]}, 400, "bad name pattern"),
        ({"team": " "}, 400, "a challenge needs a team"),
        ({"team": "t", "ttl_seconds": 10**12}, 422, "ttl_seconds"),
        ({"team": "t", "secret": "mine"}, 422, "unknown field 'secret'"),
        ({"team": "t", "manual_approval": "yes"}, 422, "manual_approval"),
    ],
)
def test_bad_challenge_requests_are_refused_and_store_nothing(
    api: ApiClient, admin: str, body: dict[str, object], status: int, detail: str
) -> None:
    assert_problem(api.post(CHALLENGES, token=admin, json=body), status, detail)
    assert stored_rows(api.platform, "scep_challenges") == 0


def test_a_held_request_is_listed_then_approved_once(api: ApiClient, admin: str, cli: Cli) -> None:
    password = api.post(CHALLENGES, token=admin, json={"team": "printers", "manual_approval": True}).json()
    transaction_id = _held_request(api.platform, password["password"])

    pending = api.get(PENDING, token=admin)

    assert pending.status_code == 200
    assert [(t["transaction_id"], t["status"], t["team"]) for t in pending.json()] == [
        (transaction_id, "pending", "printers")
    ]
    assert pending.json() == json.loads(cli("scep", "pending", "--format", "json").stdout)
    approved = api.post(f"{PENDING}/{transaction_id}/approve", token=admin)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "issued"
    issued = rows(
        api.platform.database,
        "SELECT source, team, common_name FROM certificates WHERE serial = :serial",
        serial=approved.json()["serial"],
    )
    assert issued == [("scep", "printers", "held.example.test")]
    assert api.get(PENDING, token=admin).json() == []
    again = api.post(f"{PENDING}/{transaction_id}/approve", token=admin)
    assert_problem(again, 409, f"transaction {transaction_id} is issued, not pending")


def test_a_rejected_request_issues_nothing(api: ApiClient, admin: str) -> None:
    password = api.post(CHALLENGES, token=admin, json={"team": "printers", "manual_approval": True}).json()
    transaction_id = _held_request(api.platform, password["password"])

    rejected = api.post(f"{PENDING}/{transaction_id}/reject", token=admin)

    assert rejected.status_code == 204 and rejected.content == b""
    assert api.get(PENDING, token=admin).json() == []
    assert rows(api.platform.database, "SELECT count(*) FROM certificates WHERE source = 'scep'") == [(0,)]
    assert_problem(api.post(f"{PENDING}/nope/reject", token=admin), 404, "no SCEP transaction 'nope'")


@pytest.mark.parametrize("scope", ["read", "issue", "revoke"])
def test_a_narrow_token_is_refused_every_scep_call(api: ApiClient, scope: str) -> None:
    narrow = api.token("printers", scope, ["*.example.test"] if scope != "read" else [])
    password = api.platform.scep.create_challenge("printers", actor="t", manual_approval=True).password
    transaction_id = _held_request(api.platform, password)

    for method, path, body in [
        ("POST", CHALLENGES, {"team": "printers"}),
        ("GET", CHALLENGES, None),
        ("GET", PENDING, None),
        ("POST", f"{PENDING}/{transaction_id}/approve", None),
        ("POST", f"{PENDING}/{transaction_id}/reject", None),
    ]:
        response = api.request(method, path, token=narrow, json=body)
        assert_problem(response, 403, f"this token has scope {scope}; admin is required")
    assert stored_rows(api.platform, "scep_challenges") == 1
    assert [t.transaction_id for t in api.platform.scep.pending()] == [transaction_id]


def test_openapi_documents_the_scep_admin_paths(api: ApiClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    paths = document["paths"]

    assert set(paths[CHALLENGES]) == {"get", "post"}
    assert set(paths[PENDING]) == {"get"}
    assert set(paths[f"{PENDING}/{{transaction_id}}/approve"]) == {"post"}
    assert set(paths[f"{PENDING}/{{transaction_id}}/reject"]) == {"post"}
    create = paths[CHALLENGES]["post"]
    assert create["summary"] == "Create a SCEP challenge"
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChallengeCreate")
    assert "application/problem+json" in create["responses"]["403"]["content"]
    schemas = document["components"]["schemas"]
    assert schemas["ChallengeCreate"]["examples"] and schemas["ChallengeCreated"]["examples"]
    assert schemas["TransactionOut"]["examples"]
    assert "password" not in schemas["ChallengeOut"]["properties"]


def test_a_body_over_the_server_limit_is_413_and_stores_nothing(api: ApiClient, admin: str) -> None:
    oversized = b'{"team": "' + b"x" * (1024 * 1024) + b'"}'

    response = api.post(
        CHALLENGES, token=admin, content=oversized, headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 413, "exceeds the limit of 1048576 bytes")
    assert stored_rows(api.platform, "scep_challenges") == 0

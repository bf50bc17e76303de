"""``/api/v1/est/credentials``: an admin creates EST Basic credentials (the password shown
once, and it enrols), lists them (never the password) and revokes one (the next enrolment is
refused), with the service calls ``certfleet est credential`` makes; a narrower token is
refused with 403 problem+json and nothing changes."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import ApiClient, assert_problem, stored_rows
from tests.api.test_est import EST, EstClient, csr_body
from tests.conftest import Cli

CREDENTIALS = "/api/v1/est/credentials"


def _simpleenroll_status(api: ApiClient, username: str, password: str) -> int:
    """An EST client's enrolment with these Basic credentials (RFC 7030 section 4.2.1)."""
    client = EstClient(api.platform)
    try:
        response = client.post(
            f"{EST}/simpleenroll", csr_body(["r1.edge.example.test"]), basic=f"{username}:{password}"
        )
    finally:
        client.close()
    return response.status_code


def test_admin_creates_a_credential_that_enrols_and_is_never_listed_with_its_password(
    api: ApiClient, admin: str, cli: Cli
) -> None:
    response = api.post(CREDENTIALS, token=admin, json={"team": "routers", "names": ["*.edge.example.test"]})

    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    assert created["username"] == f"est_{created['id']}"
    assert response.headers["location"] == f"{CREDENTIALS}/{created['username']}"
    assert (created["team"], created["profile"], created["names"]) == (
        "routers",
        None,
        ["*.edge.example.test"],
    )
    assert _simpleenroll_status(api, created["username"], created["password"]) == 200
    listed = api.get(CREDENTIALS, token=admin)
    assert listed.status_code == 200 and created["password"] not in listed.text
    assert listed.json() == [{k: v for k, v in created.items() if k != "password"}]
    local = cli("est", "credential", "list", "--format", "json")
    assert local.exit_code == 0, local.stderr
    assert listed.json() == json.loads(local.stdout)


def test_revoke_takes_effect_at_once_and_twice_is_404(api: ApiClient, admin: str) -> None:
    created = api.post(CREDENTIALS, token=admin, json={"team": "routers"}).json()

    response = api.request("DELETE", f"{CREDENTIALS}/{created['username']}", token=admin)

    assert response.status_code == 204 and response.content == b""
    assert _simpleenroll_status(api, created["username"], created["password"]) == 401
    assert api.get(CREDENTIALS, token=admin).json()[0]["revoked_at"] is not None
    again = api.request("DELETE", f"{CREDENTIALS}/{created['username']}", token=admin)
    assert_problem(again, 404, f"no active EST credential '{created['id']}'")


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"team": " "}, 400, "an EST credential needs a team"),
        ({"team": "t", "names": ["a.*.example.test"]}, 400, "bad name pattern"),
        ({"team": "t", "profile": "nope"}, 400, "unknown profile 'nope'"),
        ({"team": "t", "password": "mine"}, 422, "unknown field 'password'"),
        ({"names": ["*.x.test"]}, 422, "team: required"),
        ({"team": "t", "names": "*.x.test"}, 422, "names"),
    ],
)
def test_bad_requests_are_refused_and_store_nothing(
    api: ApiClient, admin: str, body: dict[str, object], status: int, detail: str
) -> None:
    assert_problem(api.post(CREDENTIALS, token=admin, json=body), status, detail)
    assert stored_rows(api.platform, "est_credentials") == 0


@pytest.mark.parametrize("scope", ["read", "issue", "revoke"])
def test_a_narrow_token_is_refused_every_credential_call(api: ApiClient, scope: str) -> None:
    narrow = api.token("routers", scope, ["*.example.test"] if scope != "read" else [])
    victim = api.platform.est.create_credential("routers", actor="t").record.username

    for method, path, body in [
        ("POST", CREDENTIALS, {"team": "routers"}),
        ("GET", CREDENTIALS, None),
        ("DELETE", f"{CREDENTIALS}/{victim}", None),
    ]:
        response = api.request(method, path, token=narrow, json=body)
        assert_problem(response, 403, f"this token has scope {scope}; admin is required")
    assert [c.revoked_at for c in api.platform.est.list_credentials()] == [None]


def test_openapi_documents_the_credential_paths(api: ApiClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    paths = document["paths"]

    assert set(paths[CREDENTIALS]) == {"get", "post"}
    assert set(paths[f"{CREDENTIALS}/{{username}}"]) == {"delete"}
    create = paths[CREDENTIALS]["post"]
    assert create["summary"] == "Create an EST credential"
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CredentialCreate"
    )
    assert "application/problem+json" in create["responses"]["403"]["content"]
    schemas = document["components"]["schemas"]
    assert schemas["CredentialCreate"]["examples"] and schemas["CredentialCreated"]["examples"]
    assert "password" not in schemas["CredentialOut"]["properties"]


def test_a_body_over_the_server_limit_is_413_and_stores_nothing(api: ApiClient, admin: str) -> None:
    oversized = b'{"team": "' + b"x" * (1024 * 1024) + b'"}'

    response = api.post(
        CREDENTIALS, token=admin, content=oversized, headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 413, "exceeds the limit of 1048576 bytes")
    assert stored_rows(api.platform, "est_credentials") == 0

"""``/api/v1/tokens``: an admin creates (the secret shown once), lists (never secrets) and
revokes API tokens over HTTP, with the service calls ``certfleet token`` makes; a narrower
token is refused with 403 problem+json and nothing stored."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import CERTS, ApiClient, assert_problem, stored_rows
from tests.conftest import Cli

TOKENS = "/api/v1/tokens"


def test_admin_creates_a_token_that_works_and_is_never_listed_with_its_secret(
    api: ApiClient, admin: str
) -> None:
    response = api.post(
        TOKENS,
        token=admin,
        json={"team": "web", "scope": "issue", "allow_names": ["*.example.com"], "description": "ci"},
    )

    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    assert created["token"].startswith(f"cf_{created['id']}_")
    assert response.headers["location"] == f"{TOKENS}/{created['id']}"
    assert (created["team"], created["scope"], created["allow_names"], created["description"]) == (
        "web",
        "issue",
        ["*.example.com"],
        "ci",
    )
    assert api.get(CERTS, token=created["token"]).status_code == 200  # a real, usable token
    listed = api.get(TOKENS, token=admin)
    assert listed.status_code == 200
    secret = created["token"].split("_", 2)[2]
    assert secret not in listed.text
    mine = [row for row in listed.json() if row["id"] == created["id"]]
    assert mine == [{k: v for k, v in created.items() if k != "token"}]


def test_the_listing_is_what_the_local_cli_prints(api: ApiClient, admin: str, cli: Cli) -> None:
    api.post(TOKENS, token=admin, json={"team": "db", "scope": "read"})

    local = cli("token", "list", "--format", "json")

    assert local.exit_code == 0, local.stderr
    assert api.get(TOKENS, token=admin).json() == json.loads(local.stdout)


def test_revoke_takes_effect_at_once_and_twice_is_404(api: ApiClient, admin: str) -> None:
    created = api.post(TOKENS, token=admin, json={"team": "web"}).json()

    response = api.request("DELETE", f"{TOKENS}/{created['id']}", token=admin)

    assert response.status_code == 204 and response.content == b""
    assert_problem(api.get(CERTS, token=created["token"]), 401, "invalid or revoked API token")
    again = api.request("DELETE", f"{TOKENS}/{created['id']}", token=admin)
    assert_problem(again, 404, f"no active token '{created['id']}'")


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"team": "web", "scope": "root"}, 400, "unknown scope 'root'"),
        ({"team": "web", "scope": "issue"}, 400, "needs at least one --allow-names pattern"),
        ({"team": " "}, 400, "a token needs a team"),
        ({"team": "web", "scope": "issue", "allow_names": ["a.*.x.test"]}, 400, "bad name pattern"),
        ({"team": "web", "admin": True}, 422, "unknown field 'admin'"),
        ({"scope": "read"}, 422, "team: required"),
        ({"team": "web", "allow_names": "*.x.test"}, 422, "allow_names"),
    ],
)
def test_bad_requests_are_refused_and_store_nothing(
    api: ApiClient, admin: str, body: dict[str, object], status: int, detail: str
) -> None:
    before = stored_rows(api.platform, "api_tokens")

    assert_problem(api.post(TOKENS, token=admin, json=body), status, detail)
    assert stored_rows(api.platform, "api_tokens") == before


@pytest.mark.parametrize("scope", ["read", "issue", "revoke"])
def test_a_narrow_token_is_refused_every_token_call(api: ApiClient, scope: str) -> None:
    narrow = api.token("web", scope, ["*.example.com"] if scope != "read" else [])
    victim = api.token("ops", "admin").split("_")[1]
    before = stored_rows(api.platform, "api_tokens")

    for method, path, body in [
        ("POST", TOKENS, {"team": "web", "scope": "admin"}),
        ("GET", TOKENS, None),
        ("DELETE", f"{TOKENS}/{victim}", None),
    ]:
        response = api.request(method, path, token=narrow, json=body)
        assert_problem(response, 403, f"this token has scope {scope}; admin is required")
    assert stored_rows(api.platform, "api_tokens") == before
    assert all(row["revoked_at"] is None for row in api.get(TOKENS, token=api.token()).json())


def test_openapi_documents_the_token_paths_with_schemas_and_examples(api: ApiClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    paths = document["paths"]

    assert set(paths[TOKENS]) == {"get", "post"}
    assert set(paths[f"{TOKENS}/{{token_id}}"]) == {"delete"}
    create = paths[TOKENS]["post"]
    assert create["summary"] == "Create an API token"
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/TokenCreate")
    assert "application/problem+json" in create["responses"]["403"]["content"]
    schemas = document["components"]["schemas"]
    assert schemas["TokenCreate"]["examples"] and schemas["TokenCreated"]["examples"]
    assert "token" not in schemas["TokenOut"]["properties"]

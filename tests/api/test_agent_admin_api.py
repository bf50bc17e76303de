"""Agent administration over HTTP: an admin mints a one-time join token a host then spends,
lists agents as ``certfleet agent list`` does, and revokes one (its identity with it); a
narrower token is refused with 403 problem+json and nothing stored."""

from __future__ import annotations

import json

import pytest

from certfleet.x509 import KeyType, fingerprint_sha256, generate_private_key, load_certificates
from tests.agent.csrs import csr_for
from tests.api.conftest import ApiClient, assert_problem, stored_rows
from tests.conftest import Cli

AGENTS = "/api/v1/agents"
JOIN = f"{AGENTS}/join-tokens"


def _join(api: ApiClient, token: str, host: str = "web1.example.test") -> dict[str, object]:
    response = api.post(
        JOIN, token=token, json={"host": host, "team": "web", "ttl": "30m", "allow_names": ["*.example.test"]}
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created: dict[str, object] = response.json()
    return created


def _enrol(api: ApiClient, join_token: object) -> str:
    csr = csr_for(generate_private_key(KeyType.EC_P256))
    response = api.post("/api/v1/agent/enroll", json={"token": join_token, "csr": csr})
    assert response.status_code == 201, response.text
    serial = load_certificates(response.json()["certificate_pem"].encode())[0].serial_number
    return format(serial, "x")


def test_a_join_token_minted_over_http_enrols_a_host_once(api: ApiClient, admin: str, cli: Cli) -> None:
    created = _join(api, admin)

    assert str(created["token"]).startswith(f"cfj_{created['id']}_")
    assert created["ca_fingerprint"] == fingerprint_sha256(api.platform.authorities.root().certificate)
    assert (created["host"], created["team"], created["allow_names"]) == (
        "web1.example.test",
        "web",
        ["*.example.test"],
    )
    _enrol(api, created["token"])
    spent = api.post(
        "/api/v1/agent/enroll",
        json={"token": created["token"], "csr": csr_for(generate_private_key(KeyType.EC_P256))},
    )
    assert spent.status_code == 401
    listed = api.get(AGENTS, token=admin).json()
    assert [(a["name"], a["team"], a["status"]) for a in listed] == [("web1.example.test", "web", "active")]
    assert listed == json.loads(cli("agent", "list", "--format", "json").stdout)


def test_revoke_refuses_the_agent_and_revokes_its_identity(api: ApiClient, admin: str) -> None:
    serial = _enrol(api, _join(api, admin)["token"])

    response = api.post(f"{AGENTS}/web1.example.test/revoke", token=admin)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "revoked" and response.json()["revoked_at"]
    identity = api.get(f"/api/v1/certificates/{serial}", token=admin).json()
    assert identity["status"] == "revoked"
    assert_problem(api.post(f"{AGENTS}/web1.example.test/revoke", token=admin), 409, "already revoked")
    assert_problem(api.post(f"{AGENTS}/nosuch.example.test/revoke", token=admin), 404, "no agent")


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"host": "web1.example.test", "ttl": "8d"}, 400, "between 1 second and 7 days"),
        ({"host": "web1.example.test", "ttl": "soon"}, 400, "soon"),
        ({"host": "web1.example.test", "allow_names": ["a.*.x.test"]}, 400, "bad name pattern"),
        ({"host": "not a host"}, 400, "not a host"),
        ({"host": "web1.example.test", "role": "admin"}, 422, "unknown field 'role'"),
        ({"team": "web"}, 422, "host: required"),
    ],
)
def test_bad_join_token_requests_are_refused_and_store_nothing(
    api: ApiClient, admin: str, body: dict[str, object], status: int, detail: str
) -> None:
    assert_problem(api.post(JOIN, token=admin, json=body), status, detail)
    assert stored_rows(api.platform, "agent_join_tokens") == 0


@pytest.mark.parametrize("scope", ["read", "issue", "revoke"])
def test_a_narrow_token_may_not_mint_join_tokens_or_revoke_agents(
    api: ApiClient, admin: str, scope: str
) -> None:
    _enrol(api, _join(api, admin)["token"])
    narrow = api.token("web", scope, ["*.example.test"] if scope != "read" else [])

    minted = api.post(JOIN, token=narrow, json={"host": "web2.example.test", "team": "web"})
    revoked = api.post(f"{AGENTS}/web1.example.test/revoke", token=narrow)

    assert_problem(minted, 403, f"this token has scope {scope}; admin is required")
    assert_problem(revoked, 403, f"this token has scope {scope}; admin is required")
    assert stored_rows(api.platform, "agent_join_tokens") == 1
    assert [a["status"] for a in api.get(AGENTS, token=admin).json()] == ["active"]


def test_openapi_documents_the_agent_admin_paths_with_schemas_and_examples(api: ApiClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    paths = document["paths"]

    assert "post" in paths[JOIN] and "get" in paths[AGENTS]
    assert "post" in paths[f"{AGENTS}/{{name}}/revoke"]
    schemas = document["components"]["schemas"]
    for name in ("JoinTokenCreate", "JoinTokenOut", "AgentOut", "DeploymentOut"):
        assert schemas[name]["examples"], name
    assert paths[AGENTS]["get"]["summary"] == "List enrolled agents"
    assert paths[f"{AGENTS}/deployments"]["get"]["summary"]

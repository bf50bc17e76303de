"""``GET /api/v1/whoami``: the token as the server sees it (what ``certfleet login`` checks
and ``certfleet status`` shows), for any valid token; 401 problem+json otherwise."""

from __future__ import annotations

from tests.api.conftest import ApiClient

WHOAMI = "/api/v1/whoami"


def test_any_valid_token_learns_its_name_team_scope_and_patterns(api: ApiClient) -> None:
    token = api.token(team="web", scope="issue", allow_names=["*.web.example.test", "10.0.0.0/8"])
    answer = api.get(WHOAMI, token=token)
    assert answer.status_code == 200
    token_id = token.split("_")[1]
    assert answer.json() == {
        "name": f"token:{token_id}",
        "team": "web",
        "scope": "issue",
        "allow_names": ["*.web.example.test", "10.0.0.0/8"],
    }
    assert api.get(WHOAMI, token=api.token(team="ops", scope="read")).json()["scope"] == "read"


def test_a_missing_or_revoked_token_is_401_problem_json(api: ApiClient) -> None:
    token = api.token()
    api.platform.tokens.revoke(token.split("_")[1], actor="test")
    for answer in (api.get(WHOAMI), api.get(WHOAMI, token=token)):
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_openapi_documents_whoami_with_its_schema_and_example(api: ApiClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    operation = document["paths"][WHOAMI]["get"]
    assert operation["summary"] == "The token's name, team, scope and name patterns"
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/WhoAmI")
    assert "application/problem+json" in operation["responses"]["401"]["content"]
    assert document["components"]["schemas"]["WhoAmI"]["examples"]

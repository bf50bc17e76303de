"""Bearer tokens: 401 without a good one, scopes, name patterns, and team isolation."""

from __future__ import annotations

import asyncio

import pytest

from certfleet.access import Principal
from tests.api.conftest import CERTS, ApiClient, assert_problem, make_csr, stored_rows
from tests.api.test_list import issue


@pytest.mark.parametrize(
    ("headers", "detail", "challenge"),
    [
        ({}, "missing bearer token", 'Bearer realm="certfleet"'),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "missing bearer token", 'Bearer realm="certfleet"'),
        (
            {"Authorization": "Bearer nonsense"},
            "malformed API token",
            'Bearer realm="certfleet", error="invalid_token"',
        ),
        (
            {"Authorization": "Bearer cf_000000000000_secret"},
            "invalid or revoked API token",
            'Bearer realm="certfleet", error="invalid_token"',
        ),
    ],
    ids=["missing", "basic", "malformed", "unknown"],
)
@pytest.mark.parametrize(("method", "path"), [("GET", CERTS), ("POST", CERTS), ("GET", f"{CERTS}/01")])
def test_no_good_token_is_401_with_a_challenge(
    api: ApiClient, method: str, path: str, headers: dict[str, str], detail: str, challenge: str
) -> None:
    response = api.request(method, path, headers=headers, json={"key_type": "ec-p256", "sans": ["a.test.x"]})

    assert_problem(response, 401, detail)
    assert response.headers["www-authenticate"] == challenge
    assert stored_rows(api.platform, "certificates") == 0


def test_wrong_secret_for_a_real_token_id_is_401(api: ApiClient) -> None:
    token = api.token("ops", "admin")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    assert_problem(api.get(CERTS, token=forged), 401, "invalid or revoked API token")


def test_revoked_token_is_401(api: ApiClient) -> None:
    token = api.token("ops", "admin")
    assert api.get(CERTS, token=token).status_code == 200
    token_id = token.split("_")[1]

    api.platform.tokens.revoke(token_id, actor="test")

    response = api.get(CERTS, token=token)
    assert_problem(response, 401, "invalid or revoked API token")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_read_scope_cannot_issue(api: ApiClient) -> None:
    reader = api.token("ops", "read")

    response = api.post(CERTS, token=reader, json={"key_type": "ec-p256", "sans": ["a.example.test"]})

    assert_problem(response, 403, "this token has scope read; issue is required")
    assert stored_rows(api.platform, "certificates") == 0


def test_issue_token_may_issue_only_names_its_patterns_allow(api: ApiClient) -> None:
    token = api.token("web", "issue", ["*.web.example.test", "10.1.0.0/16"])

    allowed = api.post(
        CERTS, token=token, json={"key_type": "ec-p256", "sans": ["www.web.example.test", "10.1.2.3"]}
    )
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["certificate"]["team"] == "web"

    for sans in (
        ["www.api.example.test"],
        ["www.web.example.test", "db.example.test"],
        ["10.2.0.1"],
        ["a.b.web.example.test"],
    ):
        refused = api.post(CERTS, token=token, json={"key_type": "ec-p256", "sans": sans})
        assert_problem(refused, 403, "this token may not issue for")
    csr_refused = api.post(CERTS, token=token, json={"csr": make_csr(["mail.example.test"])})
    assert_problem(csr_refused, 403, "this token may not issue for 'mail.example.test'")
    assert stored_rows(api.platform, "certificates") == 1
    assert stored_rows(api.platform, "serials") == 1


def test_team_isolation_for_reads(api: ApiClient, admin: str) -> None:
    mine = issue(api.platform, "www.web.example.test", team="web")
    theirs = issue(api.platform, "db.data.example.test", team="data")
    reader = api.token("web", "read")

    assert api.get(f"{CERTS}/{mine}", token=reader).status_code == 200
    assert_problem(api.get(f"{CERTS}/{theirs}", token=reader), 404, "no certificate with serial")
    listed = api.get(CERTS, token=reader).json()["items"]
    assert [i["serial"] for i in listed] == [mine]
    assert [i["serial"] for i in api.get(CERTS, token=reader, params={"team": "web"}).json()["items"]] == [
        mine
    ]
    assert_problem(api.get(CERTS, token=reader, params={"team": "data"}), 403, "only its own team")
    # Filters cannot reach past the team either.
    assert api.get(CERTS, token=reader, params={"san": "db.data.example.test"}).json()["items"] == []


def test_issue_scope_reads_its_own_team_too(api: ApiClient) -> None:
    token = api.token("web", "issue", ["**.web.example.test"])
    serial = api.post(
        CERTS, token=token, json={"key_type": "ec-p256", "sans": ["a.b.web.example.test"]}
    ).json()["certificate"]["serial"]

    assert api.get(f"{CERTS}/{serial}", token=token).status_code == 200
    assert [i["serial"] for i in api.get(CERTS, token=token).json()["items"]] == [serial]


def test_admin_sees_every_team_and_issues_any_name(api: ApiClient, admin: str) -> None:
    web = issue(api.platform, "www.web.example.test", team="web")
    data = issue(api.platform, "db.data.example.test", team="data")

    assert [i["serial"] for i in api.get(CERTS, token=admin).json()["items"]] == [web, data]
    assert api.get(f"{CERTS}/{data}", token=admin).status_code == 200
    assert (
        api.post(CERTS, token=admin, json={"key_type": "ec-p256", "sans": ["any.where.test"]}).status_code
        == 201
    )


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_the_token_is_looked_up_on_the_event_loop_only_when_the_database_is_local(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A local SQLite read (about 0.04 ms) costs less than a hop to the thread pool and back;
    # a PostgreSQL round trip must never block the event loop.
    token = api.token("ops", "read")
    tokens = api.platform.tokens
    original = tokens.authenticate
    seen: list[bool] = []

    def recording(presented: str) -> Principal:
        seen.append(_on_event_loop())
        return original(presented)

    monkeypatch.setattr(tokens, "authenticate", recording)
    assert api.get(CERTS, token=token).status_code == 200
    assert seen == [api.platform.database.dialect == "sqlite"]
    # Revoked elsewhere: refused on the next request, whichever path reads it
    api.platform.tokens.revoke(token.split("_")[1], actor="test")
    assert_problem(api.get(CERTS, token=token), 401, "invalid or revoked API token")

"""``/api/v1/spiffe/entries``: registration over REST, with the policy's SPIFFE ID prefix
rules per team enforced through the policy engine, and team visibility as for certificates."""

from __future__ import annotations

import pytest

from certfleet.app import Platform
from tests.api.conftest import ApiClient, assert_problem, stored_rows
from tests.api.spiffe_fixtures import TD

ENTRIES = "/api/v1/spiffe/entries"
PARENT = f"spiffe://{TD}/agent/host1"
POLICY = f"""
rules:
  - name: payments-spiffe
    team: payments
    spiffe_id_prefixes: [spiffe://{TD}/ns/payments]
"""


@pytest.fixture
def spiffe_api(platform: Platform, api: ApiClient) -> ApiClient:
    platform.spiffe.initialize(TD, actor="test")
    return api


def _body(path: str = "ns/app", **more: object) -> dict[str, object]:
    return {"spiffe_id": f"spiffe://{TD}/{path}", "parent_id": PARENT, "selectors": ["unix:uid:1000"], **more}


def test_admin_creates_lists_shows_and_deletes(spiffe_api: ApiClient, admin: str) -> None:
    created = spiffe_api.post(ENTRIES, token=admin, json=_body(ttl="15m", dns_names=["App.example.org"]))
    assert created.status_code == 201, created.text
    entry = created.json()
    assert (entry["ttl_seconds"], entry["dns_names"]) == (900, ["app.example.org"])
    assert entry["created_by"] == f"token:{admin.split('_')[1]}"  # who registered it
    assert spiffe_api.get(ENTRIES, token=admin).json() == [entry]
    assert spiffe_api.get(ENTRIES, token=admin, params={"parent_id": PARENT}).json() == [entry]
    assert spiffe_api.get(ENTRIES, token=admin, params={"parent_id": f"spiffe://{TD}/agent/x"}).json() == []
    assert spiffe_api.get(f"{ENTRIES}/{entry['id']}", token=admin).json() == entry
    assert spiffe_api.request("DELETE", f"{ENTRIES}/{entry['id']}", token=admin).status_code == 204
    assert_problem(spiffe_api.get(f"{ENTRIES}/{entry['id']}", token=admin), 404, "no SPIFFE entry")
    assert_problem(
        spiffe_api.request("DELETE", f"{ENTRIES}/{entry['id']}", token=admin), 404, "no SPIFFE entry"
    )


def test_policy_prefix_rule_refuses_another_prefix_for_the_team(
    platform: Platform, spiffe_api: ApiClient, admin: str
) -> None:
    platform.policy.apply(POLICY, source="test", actor="test")
    team_token = spiffe_api.token("payments", "issue", ["*.example.org"])
    before = stored_rows(platform, "spiffe_entries")
    refused = spiffe_api.post(ENTRIES, token=team_token, json=_body("ns/payroll/api"))
    body = assert_problem(refused, 403, "refused by policy rule 'payments-spiffe'")
    assert "allowed prefixes: spiffe://example.org/ns/payments" in body["detail"]
    # Whole segments: ns/paymentsX is not under ns/payments.
    assert_problem(
        spiffe_api.post(ENTRIES, token=team_token, json=_body("ns/paymentsx")), 403, "payments-spiffe"
    )
    assert stored_rows(platform, "spiffe_entries") == before
    allowed = spiffe_api.post(ENTRIES, token=team_token, json=_body("ns/payments/api"))
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["team"] == "payments"  # a team token registers for its own team
    # The refusal is in the audit log, with the rule.
    refusals = [e for e in platform.audit.entries() if e.action == "spiffe.entry.refused"]
    assert len(refusals) == 2 and refusals[0].details["rule"] == "payments-spiffe"


def test_team_tokens_act_for_their_team_only(platform: Platform, spiffe_api: ApiClient, admin: str) -> None:
    web = spiffe_api.token("web", "issue", ["*.example.org"])
    assert_problem(
        spiffe_api.post(ENTRIES, token=web, json=_body(team="payments")),
        400,
        "cannot register entries for team",
    )
    mine = spiffe_api.post(ENTRIES, token=web, json=_body()).json()
    other = spiffe_api.post(ENTRIES, token=admin, json=_body("ns/other", team="payments")).json()
    assert [e["id"] for e in spiffe_api.get(ENTRIES, token=web).json()] == [mine["id"]]
    assert_problem(spiffe_api.get(f"{ENTRIES}/{other['id']}", token=web), 404, "no SPIFFE entry")
    assert_problem(
        spiffe_api.request("DELETE", f"{ENTRIES}/{other['id']}", token=web), 404, "no SPIFFE entry"
    )
    reader = spiffe_api.token("web", "read")
    assert_problem(spiffe_api.post(ENTRIES, token=reader, json=_body("ns/x")), 403, "")
    assert_problem(spiffe_api.post(f"{ENTRIES}/{mine['id']}/revoke", token=web, json={}), 403, "")


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"spiffe_id": "spiffe://example.org/a//b"}, 400, "empty segment"),
        ({"parent_id": f"spiffe://{TD}/ns/notanagent"}, 400, "is not an agent's ID"),
        ({"selectors": ["unix:sha256:XYZ"]}, 400, "64 lower-case hexadecimal"),
        ({"ttl": "10"}, 400, "outside 300 s to 86400 s"),
        ({"selectors": []}, 422, ""),
        ({"unexpected": 1}, 422, ""),
    ],
)
def test_bad_entries_are_refused_precisely(
    platform: Platform, spiffe_api: ApiClient, admin: str, change: dict[str, object], status: int, reason: str
) -> None:
    response = spiffe_api.post(ENTRIES, token=admin, json={**_body(), **change})
    if status == 422:
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    else:
        assert_problem(response, status, reason)
    assert stored_rows(platform, "spiffe_entries") == 0


def test_entries_need_a_token(spiffe_api: ApiClient) -> None:
    assert spiffe_api.get(ENTRIES).status_code == 401

"""Presets over /api/v1/policies: applied by name (layered onto the policy in force), a
report by preset alone whose rows cite their clause, and unknown names refused as 422."""

from __future__ import annotations

import json

from tests.api.conftest import CERTS, ApiClient, assert_problem

POLICIES = "/api/v1/policies"


def test_presets_apply_layered_and_report_by_clause(api: ApiClient, admin: str) -> None:
    # Issued on the test clock's day (2026-11-28), before any policy: 300 days, over SC-081's 200.
    body = {"key_type": "ec-p256", "sans": ["long.example.test"], "validity_days": 300}
    assert api.post(CERTS, token=admin, json=body).status_code == 201
    own = "rules:\n  - name: ec-only\n    key_types: [ec-p256]\n"
    assert api.post(POLICIES, token=admin, json={"document": own}).status_code == 201

    applied = api.post(POLICIES, token=admin, json={"presets": ["cabf-tls"], "source": "--preset cabf-tls"})

    assert applied.status_code == 201, applied.text
    assert (applied.json()["version"], applied.json()["rules"]) == (2, 7)
    document = api.get(f"{POLICIES}/current", token=admin).json()["document"]
    assert document == own + "presets: [cabf-tls]\n"
    report = json.loads(api.get(f"{POLICIES}/report", token=admin).text)
    (row,) = report["violations"]
    assert (row["rule"], row["preset"]) == ("cabf-tls.validity-200", "cabf-tls")
    assert row["clause"].startswith("cabf-tls §6.3.2 validity: max 200 days")
    by_preset = json.loads(api.get(f"{POLICIES}/report", token=admin, params={"preset": "cabf-tls"}).text)
    assert by_preset["source"] == "preset cabf-tls"
    assert [r["rule"] for r in by_preset["violations"]] == ["cabf-tls.validity-200"]


def test_unknown_presets_and_empty_bodies_are_refused(api: ApiClient, admin: str) -> None:
    assert_problem(
        api.post(POLICIES, token=admin, json={"presets": ["cabf-tsl"]}),
        422,
        "presets.0: Input should be 'cabf-tls'",
    )
    assert_problem(api.post(POLICIES, token=admin, json={}), 422, "give a document, presets, or both")
    assert_problem(api.get(f"{POLICIES}/report", token=admin, params={"preset": "nist"}), 422, "preset.0")
    assert api.get(POLICIES, token=admin).json() == []

"""``/api/v1/policies``: apply (and dry-run the apply), show, history, the compliance report
and a test of a document before applying it, over HTTP, answering exactly what ``certfleet
policy ... --format json`` prints beside the data (one service call each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.conftest import CERTS, ApiClient, assert_problem, stored_rows
from tests.cli.test_policy_cli import POLICY
from tests.conftest import Cli

POLICIES = "/api/v1/policies"


def _issue(api: ApiClient, token: str, name: str, key_type: str, days: int) -> None:
    body = {"key_type": key_type, "sans": [name], "validity_days": days}
    assert api.post(CERTS, token=token, json=body).status_code == 201


def test_dry_run_stores_nothing_then_apply_stores_a_version(api: ApiClient, admin: str) -> None:
    dry = api.post(POLICIES, token=admin, json={"document": POLICY, "source": "p.yaml", "dry_run": True})

    assert dry.status_code == 200, dry.text
    assert (dry.json()["version"], dry.json()["rules"], dry.json()["changed"], dry.json()["dry_run"]) == (
        1,
        2,
        True,
        True,
    )
    assert stored_rows(api.platform, "policy_versions") == 0
    assert api.get(POLICIES, token=admin).json() == []

    applied = api.post(POLICIES, token=admin, json={"document": POLICY, "source": "p.yaml"})

    assert applied.status_code == 201, applied.text
    assert applied.headers["location"] == f"{POLICIES}/1"
    assert applied.json()["actor"].startswith("token:") and applied.json()["changed"] is True
    assert applied.json()["sha256"] == dry.json()["sha256"]
    again = api.post(POLICIES, token=admin, json={"document": POLICY, "dry_run": True})
    assert again.status_code == 200 and again.json()["changed"] is False and again.json()["version"] == 1
    assert stored_rows(api.platform, "policy_versions") == 1


def test_show_and_history_are_what_the_local_cli_prints(api: ApiClient, admin: str, cli: Cli) -> None:
    assert_problem(api.get(f"{POLICIES}/current", token=admin), 404, "no policy has been applied yet")
    assert api.post(POLICIES, token=admin, json={"document": POLICY}).status_code == 201

    for path, args in [
        (f"{POLICIES}/current", ("policy", "show", "--format", "json")),
        (f"{POLICIES}/1", ("policy", "show", "--version", "1", "--format", "json")),
        (POLICIES, ("policy", "history", "--format", "json")),
    ]:
        local = cli(*args)
        assert local.exit_code == 0, local.stderr
        assert api.get(path, token=admin).json() == json.loads(local.stdout)
    assert_problem(api.get(f"{POLICIES}/7", token=admin), 404, "no policy version 7")


def test_report_and_test_answer_the_local_json_byte_for_byte(
    api: ApiClient, admin: str, cli: Cli, tmp_path: Path
) -> None:
    _issue(api, admin, "weak.example.test", "rsa-3072", 20)
    _issue(api, admin, "long.example.test", "ec-p256", 60)
    _issue(api, admin, "fine.example.test", "ec-p256", 20)
    assert api.post(POLICIES, token=admin, json={"document": POLICY}).status_code == 201
    file = tmp_path / "next.yaml"
    file.write_text("rules:\n  - name: short\n    max_validity_days: 10\n")

    report = api.get(f"{POLICIES}/report", token=admin)
    tested = api.post(
        f"{POLICIES}/test", token=admin, json={"document": file.read_text(), "source": str(file)}
    )

    assert report.status_code == 200 and report.headers["content-type"] == "application/json"
    assert report.text == cli("policy", "report", "--format", "json").stdout
    rules = sorted((v["sans"][0], v["rule"]) for v in report.json()["violations"])
    assert rules == [
        ("long.example.test", "prefer-short"),
        ("weak.example.test", "strong-keys"),
    ]
    assert tested.status_code == 200
    assert tested.text == cli("policy", "test", str(file), "--format", "json").stdout
    assert tested.json()["summary"]["violating"] == 3 and tested.json()["policy_version"] is None


@pytest.mark.parametrize("path", ["", "/test"])
def test_a_bad_document_is_400_before_any_row_and_stores_nothing(
    api: ApiClient, admin: str, path: str
) -> None:
    bad = "rules:\n  - name: x\n    key_typez: [ec-p256]\n"

    response = api.post(f"{POLICIES}{path}", token=admin, json={"document": bad, "source": "bad.yaml"})

    assert_problem(response, 400, "bad.yaml:3: rule 'x': unknown key 'key_typez' (did you mean 'key_types'?)")
    assert stored_rows(api.platform, "policy_versions") == 0


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"document": POLICY, "dry_run": "yes"}, "dry_run"),
        ({"document": ""}, "document"),
        ({"document": POLICY, "force": True}, "unknown field 'force'"),
        ({"document": "x" * (512 * 1024 + 1)}, "document"),
    ],
    ids=["string-bool", "empty", "unknown-field", "too-long"],
)
def test_malformed_bodies_are_422(api: ApiClient, admin: str, body: dict[str, object], detail: str) -> None:
    assert_problem(api.post(POLICIES, token=admin, json=body), 422, detail)
    assert stored_rows(api.platform, "policy_versions") == 0


@pytest.mark.parametrize("scope", ["read", "issue"])
def test_a_narrow_token_reads_the_rules_but_may_not_apply_or_report(
    api: ApiClient, admin: str, scope: str
) -> None:
    api.post(POLICIES, token=admin, json={"document": POLICY})
    narrow = api.token("web", scope, ["*.example.test"] if scope == "issue" else [])

    assert api.get(f"{POLICIES}/current", token=narrow).status_code == 200
    assert api.get(POLICIES, token=narrow).status_code == 200
    for method, path, body in [
        ("POST", POLICIES, {"document": POLICY.replace("30", "20")}),
        ("GET", f"{POLICIES}/report", None),
        ("POST", f"{POLICIES}/test", {"document": POLICY}),
    ]:
        response = api.request(method, path, token=narrow, json=body)
        assert_problem(response, 403, f"this token has scope {scope}; admin is required")
    assert stored_rows(api.platform, "policy_versions") == 1


def test_openapi_documents_the_policy_paths_with_schemas_and_examples(api: ApiClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    paths = document["paths"]

    assert set(paths[POLICIES]) == {"get", "post"}
    for path in ("/current", "/{version}", "/report"):
        assert "get" in paths[f"{POLICIES}{path}"], path
    assert "post" in paths[f"{POLICIES}/test"]
    report = paths[f"{POLICIES}/report"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert report["$ref"].endswith("/ReportOut")
    schemas = document["components"]["schemas"]
    for name in ("PolicyApply", "PolicyTest", "PolicyOut", "ApplyOut", "ReportOut"):
        assert schemas[name]["examples"], name

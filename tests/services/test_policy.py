"""The policy service: versions applied and audited, the gate on every issuance path, and a
dry run that matches exactly what the applied policy then refuses."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from cryptography import x509

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.errors import PolicyViolation
from certfleet.policy import PolicyParseError, RuleViolation
from certfleet.protocols.acme._ports import IssueOrder
from certfleet.protocols.acme.bindings import ServiceIssuer
from certfleet.x509 import KeyType, generate_private_key
from tests.api.conftest import CERTS, ApiClient, assert_problem, make_csr
from tests.conftest import Cli, CliResult, FakeClock, make_platform
from tests.services.snapshot import audit_actions, rows

POLICY = """\
rules:
  - name: strong-keys
    key_types: [ec-p256, ec-p384, rsa-3072, rsa-4096]
  - name: short-lived
    profiles: [tls-server]
    max_validity_days: 90
  - name: team-a-names
    team: a
    allowed_names: ["*.a.example.test", "a.example.test"]
    denied_names: ["admin.a.example.test"]
  - name: trusted-issuers
    scope: inventory
    allowed_issuers: ["certfleet", "Let's Encrypt"]
"""


def _issue(
    platform: Platform, *names: str, key: KeyType = KeyType.EC_P256, days: int | None = None, team: str = "a"
) -> str:
    request = IssuanceRequest("tls-server", generate_private_key(key).public_key(), names, None, days)
    return platform.issuance.issue(request, actor="test", team=team).record.serial


def test_apply_stores_versions_and_audits_each(platform: Platform) -> None:
    first = platform.policy.apply(POLICY, source="p.yaml", actor="alice")
    again = platform.policy.apply(POLICY, source="p.yaml", actor="alice")
    second = platform.policy.apply(
        POLICY + "  - name: extra\n    key_types: [ec-p256]\n", source="q.yaml", actor="bob"
    )

    assert (first.changed, first.version.version, first.version.rule_count) == (True, 1, 4)
    assert (again.changed, again.version.version) == (False, 1)
    assert (second.changed, second.version.version, second.version.rule_count) == (True, 2, 5)
    assert [v.version for v in platform.policy.history()] == [2, 1]
    assert platform.policy.get(1).document == POLICY
    current = platform.policy.current()
    assert current is not None and (current.version, current.actor) == (2, "bob")
    applied = [e for e in platform.audit.entries() if e.action == "policy.applied"]
    assert [(e.actor, e.subject, e.details["previous_version"]) for e in applied] == [
        ("alice", "v1", None),
        ("bob", "v2", 1),
    ]
    assert applied[1].details["rules"][-1] == "extra"
    assert applied[1].details["sha256"] == second.version.sha256


def test_a_bad_document_records_nothing(platform: Platform) -> None:
    before = audit_actions(platform.database)
    with pytest.raises(PolicyParseError, match=r"^p.yaml:3: rule 'x': unknown key 'key_typez'"):
        platform.policy.apply("rules:\n  - name: x\n    key_typez: [ec-p256]\n", source="p.yaml", actor="a")
    with pytest.raises(PolicyParseError, match="unknown profile 'tls-sever'"):
        platform.policy.apply(
            "rules:\n  - name: x\n    profiles: [tls-sever]\n    key_types: [ec-p256]\n",
            source="p.yaml",
            actor="a",
        )
    assert rows(platform.database, "SELECT count(*) FROM policy_versions") == [(0,)]
    assert audit_actions(platform.database) == before


def test_the_gate_refuses_before_a_serial_is_reserved_and_audits_the_refusal(platform: Platform) -> None:
    platform.policy.apply(POLICY, source="p.yaml", actor="alice")
    with pytest.raises(RuleViolation) as caught:
        _issue(platform, "www.a.example.test", key=KeyType.RSA_2048)
    assert caught.value.rule == "strong-keys"
    assert rows(platform.database, "SELECT count(*) FROM serials") == [(0,)]
    refused = [e for e in platform.audit.entries() if e.action == "certificate.refused"]
    assert "refused by policy rule 'strong-keys'" in refused[-1].details["reason"]
    events = rows(platform.database, "SELECT kind, subject, team, payload_json FROM notification_events")
    assert [(k, s, t) for k, s, t, _ in events] == [("policy-violation", "strong-keys", "a")]
    details = json.loads(events[0][3])["details"]
    assert details["refused"] is True and details["request"]["key_type"] == "rsa-2048"


def test_the_same_refusal_repeated_is_one_notice_a_day(platform: Platform, clock: FakeClock) -> None:
    platform.policy.apply(POLICY, source="p.yaml", actor="alice")
    for _ in range(3):
        with pytest.raises(RuleViolation):
            _issue(platform, "admin.a.example.test")
    assert rows(platform.database, "SELECT count(*) FROM notification_events") == [(1,)]
    clock.advance(dt.timedelta(days=1))
    with pytest.raises(RuleViolation):
        _issue(platform, "admin.a.example.test")
    assert rows(platform.database, "SELECT count(*) FROM notification_events") == [(2,)]


def test_report_only_rules_issue_and_are_reported(platform: Platform) -> None:
    platform.policy.apply(
        "rules:\n  - name: prefer-p384\n    enforce: false\n    severity: low\n    key_types: [ec-p384]\n",
        source="p.yaml",
        actor="alice",
    )
    serial = _issue(platform, "www.a.example.test")
    assert platform.inventory.find(serial).key_algorithm == "ec"
    kinds = rows(platform.database, "SELECT kind, subject FROM notification_events ORDER BY id")
    assert kinds == [("policy-violation", "prefer-p384"), ("issued", serial)]
    (verdict,) = [v for v in platform.policy.evaluate_inventory() if v.violations]
    assert verdict.record.serial == serial
    assert [(v.rule, v.enforce, v.severity.value) for v in verdict.violations] == [
        ("prefer-p384", False, "low")
    ]


def test_a_policy_applied_by_another_process_is_enforced_at_once(
    platform: Platform, data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    _issue(platform, "www.a.example.test", key=KeyType.RSA_2048)  # allowed: no policy yet
    other = make_platform(data_dir, db_url, clock)
    try:
        other.policy.apply(POLICY, source="p.yaml", actor="elsewhere")
    finally:
        other.close()
    with pytest.raises(RuleViolation, match="strong-keys"):
        _issue(platform, "www.a.example.test", key=KeyType.RSA_2048)


def test_the_acme_binding_is_refused_by_the_same_engine(platform: Platform) -> None:
    platform.policy.apply(POLICY, source="p.yaml", actor="alice")
    csr = x509.load_pem_x509_csr(make_csr(["admin.a.example.test"]).encode())
    order = IssueOrder(
        csr=csr,
        names=("admin.a.example.test",),
        common_name=None,
        profile="tls-server",
        team="a",
        allow_names=None,
        actor="acme:acct1",
    )
    with pytest.raises(PolicyViolation) as caught:
        ServiceIssuer(platform.issuance).issue(order)
    assert caught.value.rule == "team-a-names"


def test_the_report_covers_active_certificates_only(platform: Platform, clock: FakeClock) -> None:
    weak = _issue(platform, "www.a.example.test", key=KeyType.RSA_2048, days=10)
    strong = _issue(platform, "www.a.example.test", days=60)
    policy = platform.policy.parse(POLICY, source="p.yaml")
    judged = {
        v.record.serial: [x.rule for x in v.violations] for v in platform.policy.evaluate_inventory(policy)
    }
    assert judged == {weak: ["strong-keys"], strong: []}
    clock.advance(dt.timedelta(days=11))  # the weak one has expired: nothing to fix any more
    judged = {
        v.record.serial: [x.rule for x in v.violations] for v in platform.policy.evaluate_inventory(policy)
    }
    assert judged == {strong: []}


# Shapes an inventory holds before the policy exists, each breaking one rule (or none).
SHAPES = {
    "weak-key": {"sans": ["www.a.example.test"], "key_type": "rsa-2048", "days": 60},
    "long-lived": {"sans": ["api.a.example.test"], "key_type": "ec-p256", "days": 200},
    "foreign-name": {"sans": ["www.b.example.test"], "key_type": "ec-p384", "days": 30},
    "denied-name": {"sans": ["admin.a.example.test"], "key_type": "ec-p256", "days": 30},
    "covering-wildcard": {"sans": ["*.a.example.test"], "key_type": "ec-p256", "days": 30},
    "compliant": {"sans": ["a.example.test"], "key_type": "ec-p256", "days": 90},
}


def _cli_issue(cli: Cli, shape: dict[str, object], out: Path) -> CliResult:
    args = ["issue", "--team", "a", "--key-type", str(shape["key_type"]), "--days", str(shape["days"])]
    for name in shape["sans"]:  # type: ignore[attr-defined]
        args += ["--san", name]
    return cli(*args, "--out", str(out))


def test_the_dry_run_matches_what_is_then_refused_on_cli_and_rest(
    platform: Platform, cli: Cli, tmp_path: Path
) -> None:
    # Given an inventory issued before any policy, one certificate per shape
    serials = {}
    for label, shape in SHAPES.items():
        issued = _cli_issue(cli, shape, tmp_path / label)
        assert issued.exit_code == 0, issued.stderr
        serials[re.search(r"Issued serial ([0-9a-f]+)", issued.stdout).group(1)] = label  # type: ignore[union-attr]
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY)

    # When the new policy is tried as a dry run
    dry = cli("policy", "test", str(policy_file), "--format", "json")
    assert dry.exit_code == 0, dry.stderr
    report = json.loads(dry.stdout)
    predicted: dict[str, set[str]] = {}
    for row in report["violations"]:
        predicted.setdefault(serials[row["serial"]], set()).add(row["rule"])
    assert predicted == {
        "weak-key": {"strong-keys"},
        "long-lived": {"short-lived"},
        "foreign-name": {"team-a-names"},
        "denied-name": {"team-a-names"},
        "covering-wildcard": {"team-a-names"},
    }
    assert report["summary"]["certificates"] == len(SHAPES)
    assert report["summary"]["compliant"] == 1
    assert cli("policy", "show").exit_code == 2, "a dry run applies nothing"

    # Then, once applied, each predicted shape is refused with that rule's name, on both paths
    applied = cli("policy", "apply", str(policy_file))
    assert applied.exit_code == 0 and "version 1" in applied.stdout
    api = ApiClient(platform)
    try:
        token = api.token("a", "issue", ["**.example.test", "a.example.test", "*.a.example.test"])
        for label, shape in SHAPES.items():
            result = _cli_issue(cli, shape, tmp_path / f"after-{label}")
            code, err = result.exit_code, result.stderr
            body = {"key_type": shape["key_type"], "sans": shape["sans"], "validity_days": shape["days"]}
            response = api.post(CERTS, token=token, json=body)
            if label == "compliant":
                assert code == 0, err
                assert response.status_code == 201, response.text
                continue
            (rule,) = predicted[label]
            assert code == 2, f"{label}: {err}"
            assert f"refused by policy rule '{rule}'" in err and err.count("\n") == 1
            problem = assert_problem(response, 403, f"refused by policy rule '{rule}'")
            assert problem["title"] == "Policy violation"
    finally:
        api.close()
    # And the report over the inventory now lists the same certificates as the dry run did
    after = cli("policy", "report", "--format", "json")
    assert {(serials.get(r["serial"]), r["rule"]) for r in json.loads(after.stdout)["violations"]} == {
        (label, rule) for label, rules in predicted.items() for rule in rules
    }

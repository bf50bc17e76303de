"""The three shipped presets over a fixture fleet: certificates crafted to break exactly one
clause each (an RSA-1024 key, a SHA-1 signature, an Ed25519 key, and validities either side
of each step of the CA/B Forum's ballot SC-081 schedule, judged by notBefore), beside
compliant ones. Each report names exactly the breaking certificates, per team, citing the
clause; a team's own rules stay in force beside a preset."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.policy import RuleViolation
from certfleet.services.compliance import compliance_report
from certfleet.x509 import KeyType, generate_private_key
from tests.conftest import Cli, FakeClock
from tests.discovery.pki import Pki, pem, rsa_key

JUDGED_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)  # every fixture is still active


def _day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


# name: (team, notBefore, days); an EC P-256 key signed with ECDSA-SHA256 unless named below
FLEET: dict[str, tuple[str, str, int]] = {
    "rsa1024.example.test": ("web", "2026-01-10", 90),
    "ed25519.example.test": ("db", "2026-01-10", 90),
    "ok-2025-398d.example.test": ("web", "2025-06-01", 398),
    "over-2025-400d.example.test": ("db", "2025-06-01", 400),
    "ok-2026-02-250d.example.test": ("web", "2026-02-01", 250),
    "over-2026-04-398d.example.test": ("web", "2026-04-01", 398),
    "ok-2026-04-200d.example.test": ("db", "2026-04-01", 200),
    "over-2027-101d.example.test": ("db", "2027-03-16", 101),
    "ok-2027-100d.example.test": ("web", "2027-03-16", 100),
    "over-2029-48d.example.test": ("web", "2029-03-20", 48),
    "ok-2029-47d.example.test": ("db", "2029-03-20", 47),
    "rsa2048.example.test": ("db", "2026-02-15", 90),
    "rsa2048-2031.example.test": ("db", "2026-02-20", 1900),  # notAfter 2031-05-05
}
SHA1 = "sha1.example.test"  # team web, signed with SHA-1 by openssl


@pytest.fixture
def fleet(platform: Platform, clock: FakeClock, tmp_path: Path) -> Platform:
    clock.set(JUDGED_AT)
    pki = Pki("Presets")
    for name, (team, not_before, days) in FLEET.items():
        key = None
        if name.startswith("rsa1024"):
            key = rsa_key(1024)
        elif name.startswith("rsa2048"):  # both RSA-2048 keys
            key = rsa_key(2048)
        elif name.startswith("ed25519"):
            key = ed25519.Ed25519PrivateKey.generate()
        start = _day(not_before)
        leaf = pki.leaf([name], key=key, not_before=start, not_after=start + dt.timedelta(days=days))
        outcome = platform.inventory.import_bytes(pem(leaf.cert), name, actor="test", team=team)
        assert outcome.error is None, outcome.error
    sha1 = pki.sha1_leaf([SHA1], tmp_path / "sha1")
    assert platform.inventory.import_bytes(pem(sha1.cert), SHA1, actor="test", team="web").error is None
    return platform


def _broken(platform: Platform, *presets: str) -> set[tuple[str, str, str]]:
    report = compliance_report(platform.policy, presets=presets)
    rows = list(report.rows)
    for row in rows:
        assert row["clause"].startswith(row["preset"] + " §"), row
    return {(row["team"], row["sans"][0], row["rule"]) for row in rows}


def test_cabf_tls_names_each_certificate_beyond_the_validity_of_its_issuance_date(fleet: Platform) -> None:
    assert _broken(fleet, "cabf-tls") == {
        ("web", "rsa1024.example.test", "cabf-tls.key-types"),
        ("db", "ed25519.example.test", "cabf-tls.key-types"),  # the BRs allow RSA and ECDSA only
        ("web", SHA1, "cabf-tls.signature-algorithms"),
        ("db", "over-2025-400d.example.test", "cabf-tls.validity-398"),
        ("web", "over-2026-04-398d.example.test", "cabf-tls.validity-200"),
        ("db", "over-2027-101d.example.test", "cabf-tls.validity-100"),
        ("web", "over-2029-48d.example.test", "cabf-tls.validity-47"),
        ("db", "rsa2048-2031.example.test", "cabf-tls.validity-398"),
    }


def test_nist_presets_name_the_weak_keys_and_the_sha1_signature_only(fleet: Platform) -> None:
    assert _broken(fleet, "nist-sp800-131a") == {
        ("web", "rsa1024.example.test", "nist-sp800-131a.key-sizes"),
        ("web", SHA1, "nist-sp800-131a.sha1-signatures"),
    }
    assert _broken(fleet, "nist-sp800-57") == {
        ("web", "rsa1024.example.test", "nist-sp800-57.security-strength"),
        ("db", "rsa2048-2031.example.test", "nist-sp800-57.strength-after-2030"),
        ("web", SHA1, "nist-sp800-57.hash-strength"),
    }


def test_the_report_cites_the_clause_and_counts_per_team(fleet: Platform) -> None:
    report = compliance_report(fleet.policy, presets=["cabf-tls"])
    rows = {row["sans"][0]: row for row in report.rows}
    assert report.head == {"policy_version": None, "source": "preset cabf-tls"}
    over = rows["over-2026-04-398d.example.test"]
    assert over["clause"] == "cabf-tls §6.3.2 validity: max 200 days for notBefore ≥ 2026-03-15 (SC-081)"
    assert over["reason"] == "validity of 398 days exceeds the maximum of 200 days"
    by_team = report.summary()["by_team"]
    assert set(by_team) == {"web", "db"}
    assert (by_team["web"]["certificates"], by_team["web"]["violating"]) == (7, 4)
    assert by_team["db"]["by_rule"] == {
        "cabf-tls.key-types": 1,
        "cabf-tls.validity-100": 1,
        "cabf-tls.validity-398": 2,
    }
    assert (by_team["db"]["certificates"], by_team["db"]["violating"]) == (7, 4)


def test_a_preset_layers_onto_the_teams_own_rules_and_the_stricter_wins(fleet: Platform) -> None:
    own = "rules:\n  - name: web-short\n    team: web\n    max_validity_days: 240\n"
    fleet.policy.apply(own, source="team.yaml", actor="alice")

    outcome = fleet.policy.apply_presets(["cabf-tls"], source="--preset cabf-tls", actor="alice")

    assert (outcome.changed, outcome.version.version, outcome.version.rule_count) == (True, 2, 7)  # 1 + 6
    assert outcome.version.document == own + "presets: [cabf-tls]\n"
    found = {(r["sans"][0], r["rule"]) for r in compliance_report(fleet.policy).rows}
    # 250 days in February 2026 meets the CA/B Forum's 398 but not the team's 240 ...
    assert ("ok-2026-02-250d.example.test", "web-short") in found
    # ... and 398 days from April 2026 breaks both.
    assert {r for n, r in found if n == "over-2026-04-398d.example.test"} == {
        "web-short",
        "cabf-tls.validity-200",
    }
    again = fleet.policy.apply_presets(["cabf-tls"], source="--preset cabf-tls", actor="alice")
    assert (again.changed, again.version.version) == (False, 2)


def test_issuance_is_judged_by_the_validity_in_force_on_the_day(platform: Platform, clock: FakeClock) -> None:
    platform.policy.apply_presets(["cabf-tls"], source="--preset cabf-tls", actor="alice")

    def issue() -> str:
        key = generate_private_key(KeyType.EC_P256).public_key()
        request = IssuanceRequest("tls-server", key, ["svc.example.test"], None, 201)
        return platform.issuance.issue(request, actor="test", team="web").record.serial

    clock.set(_day("2026-03-14"))
    assert issue()  # 201 days: within the 398 of the day before SC-081's first step
    clock.set(_day("2026-03-15"))
    with pytest.raises(RuleViolation) as refused:
        issue()
    assert refused.value.rule == "cabf-tls.validity-200"
    assert refused.value.violations[0].clause is not None


def test_policy_cli_applies_and_reports_a_preset(fleet: Platform, cli: Cli) -> None:
    # The CLI judges at the machine's time: the fleet's later certificates are still active.
    by_preset = json.loads(cli("policy", "report", "--preset", "cabf-tls", "--format", "json").stdout)
    assert ("web", "over-2029-48d.example.test", "cabf-tls.validity-47") in {
        (r["team"], r["sans"][0], r["rule"]) for r in by_preset["violations"]
    }
    assert {r["preset"] for r in by_preset["violations"]} == {"cabf-tls"}
    applied = cli("policy", "apply", "--preset", "nist-sp800-131a", "--format", "json")
    assert applied.exit_code == 0, applied.stderr
    assert json.loads(applied.stdout)["rules"] == 2
    assert "presets: [nist-sp800-131a]" in cli("policy", "show").stdout
    report = json.loads(cli("policy", "report", "--format", "json").stdout)
    assert {(r["sans"][0], r["clause"].split(":")[0]) for r in report["violations"]} >= {
        (SHA1, "nist-sp800-131a §9 / table 8")
    }
    table = cli("policy", "report")
    assert "nist-sp800-131a §9" in table.stdout

    unknown = cli("policy", "apply", "--preset", "cabf-tsl")
    assert unknown.exit_code == 2
    assert (
        unknown.stderr.strip()
        .splitlines()[-1]
        .endswith("unknown preset 'cabf-tsl' (did you mean 'cabf-tls'?)")
    )
    neither = cli("policy", "apply")
    assert neither.exit_code == 2
    assert "give a policy FILE, or --preset NAME, or both" in neither.stderr

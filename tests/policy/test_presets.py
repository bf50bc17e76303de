"""The shipped presets as policy documents: each rule a cited clause, the CA/B Forum's
validity chosen by notBefore at each step of ballot SC-081, layering onto a team's rules
without losing them, and precise errors for unknown names and bad dates."""

from __future__ import annotations

import datetime as dt

import pytest

from certfleet.policy import Candidate, Context, PolicyParseError, parse_policy
from certfleet.policy.presets import PRESET_NAMES, layer_presets, preset_document


def _candidate(not_before: str, days: float, key_type: str = "ec-p256") -> Candidate:
    return Candidate(
        names=("svc.example.test",),
        key_type=key_type,
        validity=dt.timedelta(days=days),
        signature_algorithm="ecdsa-with-SHA256",
        not_before=dt.datetime.fromisoformat(not_before).replace(tzinfo=dt.UTC),
    )


def _broken(candidate: Candidate, preset: str = "cabf-tls") -> list[str]:
    policy = parse_policy(f"presets: [{preset}]\n")
    return [v.rule for v in policy.evaluate(candidate, Context.INVENTORY)]


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_rule_of_a_preset_is_a_cited_clause(name: str) -> None:
    policy = parse_policy(f"presets: [{name}]\n")
    assert policy.rules
    for rule in policy.rules:
        assert rule.preset == name
        assert rule.name.startswith(name + ".")
        assert rule.description.startswith(name + " §")


@pytest.mark.parametrize(
    ("not_before", "days", "broken"),
    [
        ("2026-03-14T23:59:59", 398, []),
        ("2026-03-14T23:59:59", 399, ["cabf-tls.validity-398"]),
        ("2026-03-15T00:00:00", 200, []),
        ("2026-03-15T00:00:00", 201, ["cabf-tls.validity-200"]),
        ("2026-02-01T00:00:00", 250, []),
        ("2026-04-01T00:00:00", 398, ["cabf-tls.validity-200"]),
        ("2027-03-14T12:00:00", 200, []),
        ("2027-03-15T00:00:00", 100, []),
        ("2027-03-16T00:00:00", 101, ["cabf-tls.validity-100"]),
        ("2029-03-14T00:00:00", 100, []),
        ("2029-03-15T00:00:00", 47, []),
        ("2029-03-15T00:00:00", 47.5, ["cabf-tls.validity-47"]),
        ("2035-01-01T00:00:00", 48, ["cabf-tls.validity-47"]),
    ],
)
def test_cabf_validity_is_the_maximum_in_force_on_the_notbefore_date(
    not_before: str, days: float, broken: list[str]
) -> None:
    assert _broken(_candidate(not_before, days)) == broken


def test_the_violation_carries_its_preset_and_clause() -> None:
    policy = parse_policy("presets: [cabf-tls]\n")
    (violation,) = policy.evaluate(_candidate("2026-04-01", 398), Context.INVENTORY)
    assert violation.to_dict() == {
        "rule": "cabf-tls.validity-200",
        "check": "max_validity_days",
        "severity": "high",
        "enforce": True,
        "reason": "validity of 398 days exceeds the maximum of 200 days",
        "preset": "cabf-tls",
        "clause": "cabf-tls §6.3.2 validity: max 200 days for notBefore ≥ 2026-03-15 (SC-081)",
    }


def test_a_rule_selected_by_date_does_not_concern_a_candidate_without_one() -> None:
    undated = Candidate(names=("a.example.test",), key_type="ec-p256", validity=dt.timedelta(days=900))
    assert "cabf-tls.validity-200" not in _broken(undated)


@pytest.mark.parametrize(
    ("key_type", "cabf", "nist"),
    [
        ("rsa-1024", ["cabf-tls.key-types"], ["nist-sp800-131a.key-sizes"]),
        ("rsa-2048", [], []),
        ("ec-p384", [], []),
        ("ed25519", ["cabf-tls.key-types"], []),
    ],
)
def test_key_types(key_type: str, cabf: list[str], nist: list[str]) -> None:
    candidate = _candidate("2026-01-01", 90, key_type)
    assert _broken(candidate) == cabf
    assert _broken(candidate, "nist-sp800-131a") == nist


@pytest.mark.parametrize(
    ("key_type", "not_after", "broken"),
    [
        ("rsa-2048", "2030-12-31", []),
        ("rsa-2048", "2031-01-01", ["nist-sp800-57.strength-after-2030"]),
        ("rsa-3072", "2035-01-01", []),
        ("ec-p256", "2035-01-01", []),
    ],
)
def test_sp800_57_wants_128_bits_for_protection_after_2030(
    key_type: str, not_after: str, broken: list[str]
) -> None:
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    end = dt.datetime.fromisoformat(not_after).replace(tzinfo=dt.UTC)
    candidate = _candidate("2026-06-01", (end - start) / dt.timedelta(days=1), key_type)
    assert _broken(candidate, "nist-sp800-57") == broken


def test_sha1_signatures_break_every_preset() -> None:
    sha1 = Candidate(
        names=("a.example.test",),
        key_type="rsa-2048",
        validity=dt.timedelta(days=90),
        signature_algorithm="sha1WithRSAEncryption",
        not_before=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    assert _broken(sha1) == ["cabf-tls.signature-algorithms"]
    assert _broken(sha1, "nist-sp800-131a") == ["nist-sp800-131a.sha1-signatures"]
    assert _broken(sha1, "nist-sp800-57") == ["nist-sp800-57.hash-strength"]


def test_a_teams_rules_come_first_and_both_hold() -> None:
    own = "rules:\n  - name: short\n    max_validity_days: 30\n"
    policy = parse_policy(layer_presets(own, ["cabf-tls"]))
    assert policy.rules[0].name == "short" and policy.rules[0].preset is None
    assert [v.rule for v in policy.evaluate(_candidate("2026-04-01", 300), Context.INVENTORY)] == [
        "short",
        "cabf-tls.validity-200",
    ]


@pytest.mark.parametrize(
    ("document", "names", "expected"),
    [
        (None, ["cabf-tls"], "presets: [cabf-tls]\n"),
        ("rules: []", ["cabf-tls"], "rules: []\npresets: [cabf-tls]\n"),
        (
            "presets: [cabf-tls]\nrules: []\n",
            ["nist-sp800-57"],
            "presets: [cabf-tls, nist-sp800-57]\nrules: []\n",
        ),
        ("presets: [cabf-tls]\n", ["cabf-tls"], "presets: [cabf-tls]\n"),
        ("presets:\n  - cabf-tls\n", ["nist-sp800-57"], "presets:\n- cabf-tls\n- nist-sp800-57\n"),
    ],
)
def test_layering_adds_each_preset_once_and_keeps_the_document(
    document: str | None, names: list[str], expected: str
) -> None:
    assert layer_presets(document, names) == expected


def test_layering_keeps_the_line_numbers_of_a_broken_document() -> None:
    with pytest.raises(PolicyParseError) as caught:
        parse_policy(
            layer_presets("rules:\n  - name: x\n    max_validity_days: 0\n", ["cabf-tls"]), source="p.yaml"
        )
    assert str(caught.value).startswith("p.yaml:3: rule 'x': max_validity_days")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("presets: [cabf-tsl]\n", "p.yaml:1: presets: unknown preset 'cabf-tsl' (did you mean 'cabf-tls'?)"),
        ("presets: cabf-tls\n", "p.yaml:1: presets must be a non-empty list"),
        (
            "rules:\n  - name: cabf-tls.key-types\n    max_validity_days: 3\npresets: [cabf-tls]\n",
            "p.yaml:4: presets: cabf-tls: rule 'cabf-tls.key-types' is already defined",
        ),
        (
            "rules:\n  - name: x\n    issued_from: 15/03/2026\n    max_validity_days: 3\n",
            "p.yaml:3: rule 'x': issued_from must be a date (YYYY-MM-DD), not '15/03/2026'",
        ),
    ],
)
def test_bad_presets_and_dates_are_refused_with_their_line(document: str, message: str) -> None:
    with pytest.raises(PolicyParseError) as caught:
        parse_policy(document, source="p.yaml")
    assert str(caught.value) == message


def test_a_preset_document_cannot_name_presets_itself() -> None:
    for name in PRESET_NAMES:
        assert "\npresets:" not in preset_document(name)
    with pytest.raises(KeyError):
        preset_document("../../etc/passwd")

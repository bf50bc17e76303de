"""Policy documents: the issue's form parses; every mistake is one precise line."""

from __future__ import annotations

import pytest

from certfleet.policy import PolicyParseError, RuleScope, RuleSeverity, parse_policy

ISSUE_FORM = """\
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


def test_the_form_of_the_issue_parses_into_rules_and_checks() -> None:
    policy = parse_policy(ISSUE_FORM)
    assert [r.name for r in policy.rules] == ["strong-keys", "short-lived", "team-a-names", "trusted-issuers"]
    kinds = {r.name: [c.kind for c in r.checks] for r in policy.rules}
    assert kinds == {
        "strong-keys": ["key_types"],
        "short-lived": ["max_validity_days"],
        "team-a-names": ["allowed_names", "denied_names"],
        "trusted-issuers": ["allowed_issuers"],
    }
    short_lived = policy.rule("short-lived")
    assert short_lived is not None and short_lived.profiles == ("tls-server",)
    team_rule = policy.rule("team-a-names")
    assert team_rule is not None and team_rule.teams == ("a",)
    issuers = policy.rule("trusted-issuers")
    assert issuers is not None and issuers.scope is RuleScope.INVENTORY
    assert all(r.enforce and r.severity is RuleSeverity.HIGH for r in policy.rules)


def test_the_other_kinds_and_meta_keys_parse() -> None:
    policy = parse_policy(
        """
rules:
  - name: modern-signatures
    signature_algorithms: [ecdsa-with-SHA256, SHA256WITHRSAENCRYPTION]
    required_ekus: [serverAuth, 1.3.6.1.5.5.7.3.2]
    ip_ranges: [10.0.0.0/8, "2001:db8::/32"]
    severity: critical
    enforce: false
    scope: issuance
    team: [a, b]
    description: only modern algorithms
"""
    )
    (rule,) = policy.rules
    assert (rule.severity, rule.enforce, rule.scope, rule.teams) == (
        RuleSeverity.CRITICAL,
        False,
        RuleScope.ISSUANCE,
        ("a", "b"),
    )
    assert [c.kind for c in rule.checks] == ["ip_ranges", "signature_algorithms", "required_ekus"]
    assert policy.needs_ekus


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            "rules:\n  - name: x\n    key_type: [ec-p256]\n",
            "p.yaml:3: rule 'x': unknown key 'key_type' (did you mean 'key_types'?)",
        ),
        ("rules: [\n", "p.yaml:2: invalid YAML"),
        ("rule:\n  - name: x\n", "p.yaml:1: unknown top-level key 'rule' (expected 'rules' or 'presets')"),
        (
            "rules:\n  - name: x\n    key_types: [rsa-2047]\n",
            "p.yaml:3: rule 'x': key_types: unknown key type 'rsa-2047'",
        ),
        (
            "rules:\n  - name: x\n    team: no\n    key_types: [ec-p256]\n",
            "p.yaml:3: rule 'x': team must be a string or a list of strings, not False (quote it)",
        ),
        ("rules:\n  - name: x\n    name: y\n", "p.yaml:3: duplicate key 'name'"),
        (
            "rules:\n  - name: x\n    ip_ranges: [10.0.0.1/8]\n",
            "p.yaml:3: rule 'x': ip_ranges: '10.0.0.1/8' is not an IP network",
        ),
        (
            "rules:\n  - name: x\n    signature_algorithms: [sha256WithRSA]\n",
            "did you mean 'sha256WithRSAEncryption'?",
        ),
        (
            "rules:\n  - name: x\n    required_ekus: [serverauthh]\n",
            "p.yaml:3: rule 'x': required_ekus: unknown 'serverauthh'",
        ),
        (
            "rules:\n  - name: x\n    severity: huge\n    key_types: [ec-p256]\n",
            "p.yaml:3: rule 'x': severity must be one of low, medium, high, critical",
        ),
        (
            "rules:\n  - name: x\n    enforce: maybe\n    key_types: [ec-p256]\n",
            "p.yaml:3: rule 'x': enforce must be true or false",
        ),
        (
            "rules:\n  - name: x\n    scope: everywhere\n    key_types: [ec-p256]\n",
            "scope must be one of all, issuance, inventory",
        ),
        (
            "rules:\n  - name: x\n    max_validity_days: 0\n",
            "p.yaml:3: rule 'x': max_validity_days must be a whole number of days",
        ),
        ("rules:\n  - name: x\n    max_validity_days: true\n", "max_validity_days must be a whole number"),
        (
            "rules:\n  - name: x\n    key_types: []\n",
            "p.yaml:3: rule 'x': key_types must be a non-empty list",
        ),
        (
            "rules:\n  - name: x\n    allowed_names: ['a.*.example.test']\n",
            "'*' or '**' only as the whole leftmost label",
        ),
        ("rules:\n  - name: x\n    denied_names: ['bad name']\n", "rule 'x': denied_names:"),
        ("rules:\n  - name: x\n    profiles: [tls-server]\n", "p.yaml:2: rule 'x': checks nothing"),
        (
            "rules:\n  - name: x\n    key_types: [ec-p256]\n  - name: x\n    key_types: [ec-p384]\n",
            "p.yaml:4: rule 'x': the name is already used",
        ),
        ("rules:\n  - key_types: [ec-p256]\n", "p.yaml:2: rules[0] needs a name"),
        ("rules:\n  - just-a-string\n", "p.yaml:1: rules[0] must be a mapping"),
        ("", "p.yaml: empty policy"),
        ("- a\n- b\n", "p.yaml:1: a policy is a mapping"),
    ],
)
def test_every_mistake_is_one_line_naming_file_and_line(document: str, expected: str) -> None:
    with pytest.raises(PolicyParseError) as caught:
        parse_policy(document, source="p.yaml")
    detail = caught.value.detail
    assert expected in detail, detail
    assert "\n" not in detail
    assert caught.value.http_status == 400


def test_an_empty_rule_list_is_a_policy_that_allows_everything() -> None:
    assert parse_policy("rules: []\n").rules == ()


def test_bytes_that_are_not_utf8_are_refused_precisely() -> None:
    with pytest.raises(PolicyParseError, match=r"p\.yaml: not UTF-8 text"):
        parse_policy(b"rules:\n  - name: \xff\n", source="p.yaml")

"""Each rule kind, selectors, scope, enforce and severity, judged on candidates."""

from __future__ import annotations

import datetime as dt

import pytest

from certfleet.policy import Candidate, Context, RuleSeverity, RuleViolation, parse_policy

DAY = dt.timedelta(days=1)
LE_ISSUER = "CN=R3,O=Let's Encrypt,C=US"


def candidate(**changes: object) -> Candidate:
    base: dict[str, object] = {
        "names": ("www.a.example.test",),
        "key_type": "ec-p256",
        "validity": 90 * DAY,
        "profile": "tls-server",
        "team": "a",
        "issuer": "CN=certfleet Issuing CA 1,O=certfleet",
        "issuer_ca_id": "0123456789abcdef",
        "signature_algorithm": "ecdsa-with-SHA256",
        "ekus": ("1.3.6.1.5.5.7.3.1",),
    }
    base.update(changes)
    return Candidate(**base)  # type: ignore[arg-type]


def reasons(rule_yaml: str, subject: Candidate, context: Context = Context.ISSUANCE) -> list[str]:
    policy = parse_policy(f"rules:\n  - name: r\n{rule_yaml}")
    return [v.reason for v in policy.evaluate(subject, context)]


@pytest.mark.parametrize(
    ("rule", "subject", "refused_with"),
    [
        ("    key_types: [ec-p256, rsa-3072]\n", candidate(), None),
        (
            "    key_types: [ec-p256, rsa-3072]\n",
            candidate(key_type="rsa-2048"),
            "key type rsa-2048 is not allowed",
        ),
        ("    max_validity_days: 90\n", candidate(validity=90 * DAY), None),
        (
            "    max_validity_days: 90\n",
            candidate(validity=91 * DAY),
            "validity of 91 days exceeds the maximum of 90",
        ),
        ("    allowed_names: ['*.a.example.test']\n", candidate(), None),
        ("    allowed_names: ['*.a.example.test']\n", candidate(names=("*.a.example.test",)), None),
        (
            "    allowed_names: ['*.a.example.test']\n",
            candidate(names=("x.y.a.example.test",)),
            "name x.y.a.example.test is not allowed",
        ),
        ("    allowed_names: ['**.a.example.test']\n", candidate(names=("x.y.a.example.test",)), None),
        (
            "    allowed_names: ['a.example.test']\n",
            candidate(names=("a.example.test", "b.example.test")),
            "name b.example.test is not allowed",
        ),
        (
            "    allowed_names: ['*.a.example.test']\n",
            candidate(names=("www.a.example.test", "10.1.2.3")),
            "name 10.1.2.3 is not allowed",
        ),
        (
            "    allowed_names: ['*.a.example.test', 10.0.0.0/8]\n",
            candidate(names=("www.a.example.test", "10.1.2.3")),
            None,
        ),
        (
            "    denied_names: [admin.a.example.test]\n",
            candidate(names=("admin.a.example.test",)),
            "name admin.a.example.test is denied",
        ),
        (
            "    denied_names: [admin.a.example.test]\n",
            candidate(names=("*.a.example.test",)),
            "name *.a.example.test covers a denied name",
        ),
        ("    denied_names: [admin.a.example.test]\n", candidate(names=("*.example.test",)), None),
        (
            "    denied_names: ['**.internal.test']\n",
            candidate(names=("db.eu.internal.test",)),
            "is denied (denied: **.internal.test)",
        ),
        ("    denied_names: [192.0.2.0/24]\n", candidate(names=("192.0.2.7",)), "name 192.0.2.7 is denied"),
        ("    ip_ranges: [10.0.0.0/8]\n", candidate(names=("www.a.example.test", "10.9.9.9")), None),
        (
            "    ip_ranges: [10.0.0.0/8]\n",
            candidate(names=("192.0.2.1",)),
            "IP address 192.0.2.1 is outside the allowed ranges (10.0.0.0/8)",
        ),
        ("    ip_ranges: ['2001:db8::/32']\n", candidate(names=("2001:db8::1",)), None),
        (
            "    ip_ranges: ['2001:db8::/32']\n",
            candidate(names=("10.0.0.1",)),
            "IP address 10.0.0.1 is outside",
        ),
        ("    allowed_issuers: [certfleet]\n", candidate(), None),
        (
            "    allowed_issuers: [certfleet]\n",
            candidate(issuer=LE_ISSUER, issuer_ca_id=None),
            "issuer CN=R3,O=Let's Encrypt,C=US is not trusted",
        ),
        ('    allowed_issuers: ["let\'s encrypt"]\n', candidate(issuer=LE_ISSUER, issuer_ca_id=None), None),
        ("    allowed_issuers: [0123456789abcdef]\n", candidate(), None),
        (
            '    allowed_issuers: ["CN=R3,O=Let\'s Encrypt,C=US"]\n',
            candidate(issuer=LE_ISSUER, issuer_ca_id=None),
            None,
        ),
        (
            "    allowed_issuers: [R3]\n",
            candidate(issuer="CN=R3 Evil,O=Other", issuer_ca_id=None),
            "is not trusted",
        ),
        (
            "    signature_algorithms: [ecdsa-with-SHA384]\n",
            candidate(),
            "signature algorithm ecdsa-with-SHA256 is not allowed",
        ),
        ("    signature_algorithms: [ECDSA-WITH-SHA256]\n", candidate(), None),
        (
            "    required_ekus: [serverAuth, clientAuth]\n",
            candidate(),
            "extended key usage clientAuth is missing",
        ),
        ("    required_ekus: [1.3.6.1.5.5.7.3.1]\n", candidate(), None),
    ],
)
def test_each_check_allows_or_refuses_with_a_precise_reason(
    rule: str, subject: Candidate, refused_with: str | None
) -> None:
    found = reasons(rule, subject)
    if refused_with is None:
        assert found == []
    else:
        assert len(found) == 1 and refused_with in found[0], found


def test_selectors_limit_a_rule_to_profiles_and_teams() -> None:
    rule = "    profiles: [tls-server]\n    team: [a, b]\n    max_validity_days: 30\n"
    assert reasons(rule, candidate()) != []
    assert reasons(rule, candidate(team="b")) != []
    assert reasons(rule, candidate(team="c")) == []
    assert reasons(rule, candidate(team=None)) == []
    assert reasons(rule, candidate(profile="tls-client")) == []
    assert reasons(rule, candidate(profile=None)) == []  # a discovered certificate has no profile


@pytest.mark.parametrize(
    ("scope", "issuance", "inventory"),
    [("all", True, True), ("issuance", True, False), ("inventory", False, True)],
)
def test_scope_says_where_a_rule_is_evaluated(scope: str, issuance: bool, inventory: bool) -> None:
    rule = f"    scope: {scope}\n    key_types: [ec-p384]\n"
    assert bool(reasons(rule, candidate(), Context.ISSUANCE)) is issuance
    assert bool(reasons(rule, candidate(), Context.INVENTORY)) is inventory


def test_an_enforced_violation_refuses_naming_the_rule_and_check() -> None:
    policy = parse_policy(
        "rules:\n  - name: strong-keys\n    key_types: [ec-p256]\n"
        "  - name: short\n    max_validity_days: 30\n"
    )
    with pytest.raises(RuleViolation) as caught:
        policy.check_issuance(candidate(key_type="rsa-2048", validity=31 * DAY))
    refusal = caught.value
    assert refusal.rule == "strong-keys"
    assert refusal.check == "key_types"
    assert refusal.http_status == 403
    assert refusal.detail.startswith("refused by policy rule 'strong-keys': key type rsa-2048 is not allowed")
    assert refusal.detail.endswith("(and 1 more)")
    assert [v.rule for v in refusal.violations] == ["strong-keys", "short"]
    assert not refusal.about_names


def test_a_names_refusal_says_it_is_about_identifiers() -> None:
    policy = parse_policy("rules:\n  - name: n\n    denied_names: [www.a.example.test]\n")
    with pytest.raises(RuleViolation) as caught:
        policy.check_issuance(candidate())
    assert caught.value.about_names


def test_enforce_false_reports_without_refusing_and_keeps_its_severity() -> None:
    policy = parse_policy(
        "rules:\n  - name: advisory\n    enforce: false\n    severity: low\n    key_types: [ec-p384]\n"
    )
    (violation,) = policy.check_issuance(candidate())  # no exception
    assert (violation.rule, violation.enforce, violation.severity) == ("advisory", False, RuleSeverity.LOW)
    assert violation.to_dict() == {
        "rule": "advisory",
        "check": "key_types",
        "severity": "low",
        "enforce": False,
        "reason": "key type ec-p256 is not allowed (allowed: ec-p384)",
    }


def test_report_only_and_enforced_together_refuse_with_only_the_enforced() -> None:
    policy = parse_policy(
        "rules:\n  - name: advisory\n    enforce: false\n    key_types: [ec-p384]\n"
        "  - name: hard\n    max_validity_days: 10\n"
    )
    with pytest.raises(RuleViolation) as caught:
        policy.check_issuance(candidate())
    assert [v.rule for v in caught.value.violations] == ["hard"]


def test_severities_are_ordered() -> None:
    assert [
        s.rank for s in (RuleSeverity.LOW, RuleSeverity.MEDIUM, RuleSeverity.HIGH, RuleSeverity.CRITICAL)
    ] == [0, 1, 2, 3]


def test_an_empty_policy_allows_everything() -> None:
    assert parse_policy("rules: []").check_issuance(candidate(key_type="rsa-1024")) == ()

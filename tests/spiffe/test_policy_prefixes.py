"""The policy rule ``spiffe_id_prefixes``: parsed strictly, matched by whole path segments,
and the only check a registration (which has no key or validity yet) is judged by."""

from __future__ import annotations

import datetime as dt

import pytest

from certfleet.policy import Candidate, PolicyParseError, RuleViolation, parse_policy

DOC = """
rules:
  - name: payments-spiffe
    team: payments
    spiffe_id_prefixes: [spiffe://example.org/ns/payments, spiffe://example.org/shared]
  - name: strong-keys
    key_types: [ec-p384]
"""


def _candidate(spiffe_id: str, team: str | None = "payments", key_type: str = "") -> Candidate:
    return Candidate(
        names=(), key_type=key_type, validity=dt.timedelta(hours=1), profile="x509-svid", team=team,
        spiffe_ids=(spiffe_id,),
    )  # fmt: skip


@pytest.mark.parametrize(
    "spiffe_id",
    [
        "spiffe://example.org/ns/payments",
        "spiffe://example.org/ns/payments/api",
        "spiffe://example.org/shared/x",
    ],
)
def test_ids_under_a_prefix_are_registered(spiffe_id: str) -> None:
    assert parse_policy(DOC).check_registration(_candidate(spiffe_id)) == ()


@pytest.mark.parametrize(
    "spiffe_id",
    [
        "spiffe://example.org/ns/paymentsx",
        "spiffe://example.org/ns/payroll",
        "spiffe://other.org/ns/payments",
    ],
)
def test_ids_outside_every_prefix_are_refused(spiffe_id: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        parse_policy(DOC).check_registration(_candidate(spiffe_id))
    assert caught.value.rule == "payments-spiffe"
    assert f"SPIFFE ID {spiffe_id} is not allowed" in caught.value.detail


def test_the_rule_concerns_its_team_only() -> None:
    assert parse_policy(DOC).check_registration(_candidate("spiffe://example.org/ns/web", team="web")) == ()


def test_registration_ignores_checks_that_need_a_key_but_issuance_runs_them() -> None:
    policy = parse_policy(DOC)
    candidate = _candidate("spiffe://example.org/ns/payments/api", key_type="ec-p256")
    assert policy.check_registration(candidate) == ()
    with pytest.raises(RuleViolation, match="strong-keys"):
        policy.check_issuance(candidate)


def test_certificates_without_a_spiffe_id_are_not_concerned() -> None:
    plain = Candidate(
        names=("www.example.org",), key_type="ec-p384", validity=dt.timedelta(days=30), team="payments"
    )
    assert parse_policy(DOC).check_issuance(plain) == ()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("[https://example.org/ns]", "is not a SPIFFE ID prefix"),
        ("[spiffe://example.org/ns/]", "no trailing '/'"),
        ("[spiffe://]", "is not a SPIFFE ID prefix"),
        ("[]", "must be a non-empty list"),
        ("spiffe://example.org", "must be a non-empty list"),
    ],
)
def test_bad_prefixes_are_refused_with_their_line(value: str, reason: str) -> None:
    with pytest.raises(PolicyParseError) as caught:
        parse_policy(f"rules:\n  - name: r\n    spiffe_id_prefixes: {value}\n", source="p.yaml")
    assert caught.value.detail.startswith("p.yaml:3: rule 'r': spiffe_id_prefixes")
    assert reason in caught.value.detail

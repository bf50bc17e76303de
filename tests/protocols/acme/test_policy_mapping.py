"""A policy refusal reaches an ACME client as the RFC 8555 problem that fits it."""

from __future__ import annotations

import pytest

from certfleet.policy import RuleSeverity, RuleViolation, Violation
from certfleet.protocols.acme.finalize import _refusal


@pytest.mark.parametrize(
    ("check", "kind"),
    [
        ("allowed_names", "rejectedIdentifier"),
        ("denied_names", "rejectedIdentifier"),
        ("ip_ranges", "rejectedIdentifier"),
        ("key_types", "badCSR"),
        ("max_validity_days", "unauthorized"),
    ],
)
def test_rule_violation_maps_to_problem(check: str, kind: str) -> None:
    violation = Violation("team-a-names", check, RuleSeverity.HIGH, True, "not allowed")
    problem = _refusal(RuleViolation((violation,)))
    assert problem.kind == kind
    assert "team-a-names" in problem.detail

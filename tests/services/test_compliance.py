"""The one compliance tally, read by the CLI's report and the dashboard: certificates,
violating ones and violations per rule, over every team or over one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from certfleet.services.compliance import ComplianceTally
from certfleet.services.policy import Verdict


@dataclass(frozen=True)
class _Record:  # the tally reads only the team of a verdict's record
    team: str | None


@dataclass(frozen=True)
class _Violation:  # and only the rule of each violation
    rule: str


def _verdict(team: str | None, *rules: str) -> Verdict:
    return Verdict(_Record(team), tuple(_Violation(r) for r in rules))  # type: ignore[arg-type]


def test_counts_over_every_team_and_over_one() -> None:
    tally = ComplianceTally()
    for verdict in (
        _verdict("web", "no-rsa-1024", "max-validity"),
        _verdict("web"),
        _verdict("db", "no-rsa-1024"),
        _verdict(None),
    ):
        tally.add(verdict)

    everyone = tally.counts()
    assert (everyone.certificates, everyone.violating, everyone.compliant, everyone.violations) == (
        4,
        2,
        2,
        3,
    )
    assert everyone.by_rule == Counter({"no-rsa-1024": 2, "max-validity": 1})
    assert everyone.to_dict() == {
        "certificates": 4,
        "compliant": 2,
        "violating": 2,
        "violations": 3,
        "by_rule": {"max-validity": 1, "no-rsa-1024": 2},
    }
    web = tally.counts("web")
    assert (web.certificates, web.violating, web.violations) == (2, 1, 2)
    assert tally.counts("").certificates == 1  # certificates of no team
    assert tally.counts("nobody").to_dict()["certificates"] == 0

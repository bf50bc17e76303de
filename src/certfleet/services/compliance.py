"""Compliance counting: the one tally of a policy's verdicts over the inventory, per team,
read by the CLI's report and the dashboard's policy page alike (so both count the same way)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from certfleet.services.policy import Verdict

__all__ = ["ComplianceCounts", "ComplianceTally"]


@dataclass(frozen=True)
class ComplianceCounts:
    """What a reader sees: certificates judged, those with at least one violation, the
    violations, and the violations per rule."""

    certificates: int
    violating: int
    violations: int
    by_rule: Counter[str]

    @property
    def compliant(self) -> int:
        return self.certificates - self.violating

    def to_dict(self) -> dict[str, object]:
        return {
            "certificates": self.certificates,
            "compliant": self.compliant,
            "violating": self.violating,
            "violations": self.violations,
            "by_rule": dict(sorted(self.by_rule.items())),
        }


@dataclass
class ComplianceTally:
    """Verdicts counted as they stream by (flat memory over any inventory), per team (""
    for none) so a team's reader sees only its own certificates."""

    evaluated: Counter[str] = field(default_factory=Counter)
    failing: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, verdict: Verdict) -> None:
        team = verdict.record.team or ""
        self.evaluated[team] += 1
        if verdict.violations:
            self.failing[team] += 1
        for violation in verdict.violations:
            self.by_rule[(team, violation.rule)] += 1

    def counts(self, team: str | None = None) -> ComplianceCounts:
        """Totals over every team (``None``) or over one."""

        def mine(t: str) -> bool:
            return team is None or t == team

        rules: Counter[str] = Counter()
        for (t, rule), n in self.by_rule.items():
            if mine(t):
                rules[rule] += n
        return ComplianceCounts(
            certificates=sum(n for t, n in self.evaluated.items() if mine(t)),
            violating=sum(n for t, n in self.failing.items() if mine(t)),
            violations=sum(rules.values()),
            by_rule=rules,
        )

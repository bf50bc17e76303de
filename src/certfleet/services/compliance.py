"""Compliance counting: the one tally of a policy's verdicts over the inventory, per team,
read by the CLI's report and the dashboard's policy page alike (so both count the same way);
and the report itself, which ``certfleet policy report|test`` and ``/api/v1/policies/report``
and ``/api/v1/policies/test`` produce from the same call, in the same JSON."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from certfleet.policy import Policy
from certfleet.policy.presets import layer_presets
from certfleet.services.policy import PolicyService, Verdict

__all__ = ["ComplianceCounts", "ComplianceReport", "ComplianceTally", "compliance_report", "report_json"]


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


def report_json(
    head: dict[str, Any], rows: Iterable[dict[str, Any]], summary: Callable[[], dict[str, Any]]
) -> Iterator[str]:
    """The report as JSON text, chunk by chunk: ``head``'s keys, ``violations`` (one row a
    line) and ``summary`` (asked for after the last row, when the tally is complete)."""
    yield json.dumps(head)[:-1] + ', "violations": ['
    for index, row in enumerate(rows):
        yield ("\n" if index == 0 else ",\n") + json.dumps(row, sort_keys=True)
    yield '\n], "summary": ' + json.dumps(summary(), sort_keys=True) + "}\n"


@dataclass
class ComplianceReport:
    """``head`` (the policy version judged by; for a dry run, None and the document's
    source), then one row per violation, streamed page by page and counted as they go: the
    summary is complete once ``rows`` is exhausted."""

    head: dict[str, Any]
    rows: Iterator[dict[str, Any]]
    tally: ComplianceTally

    def summary(self) -> dict[str, Any]:
        """The totals, and the same per team ("" for certificates of no team): which rules
        (a preset's clauses included) each team's certificates break."""
        teams = {team: self.tally.counts(team).to_dict() for team in sorted(self.tally.evaluated)}
        return {**self.tally.counts().to_dict(), "by_team": teams}

    def json_chunks(self) -> Iterator[str]:
        return report_json(self.head, self.rows, self.summary)


def compliance_report(
    service: PolicyService,
    document: str | bytes | None = None,
    *,
    source: str = "policy",
    presets: Sequence[str] = (),
) -> ComplianceReport:
    """Judge the active certificates by the policy in force, or (a dry run before applying)
    by ``document``, which is parsed now so that a bad one is refused before any row; or,
    with ``presets`` and no document, by those shipped presets alone (each row then names
    the preset and cites the clause broken)."""
    if document is None and presets:
        document = layer_presets(None, presets)
        source = "preset " + ", ".join(presets)
    if document is None:
        version, policy = service.active()
        head: dict[str, Any] = {"policy_version": version}
    else:
        policy = service.parse(document, source=source)
        head = {"policy_version": None, "source": source}
    tally = ComplianceTally()
    return ComplianceReport(head, _violation_rows(service, policy, tally), tally)


def _violation_rows(
    service: PolicyService, policy: Policy, tally: ComplianceTally
) -> Iterator[dict[str, Any]]:
    now = service.now()
    for verdict in service.evaluate_inventory(policy):
        tally.add(verdict)
        yield from verdict.rows(now)

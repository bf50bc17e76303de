"""The policy compliance report: every active certificate judged by the rules in force,
once per policy version and at most every few minutes (a pass over the whole inventory)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field

from certfleet.inventory import CertificateRecord
from certfleet.policy import Violation
from certfleet.services.compliance import ComplianceTally
from certfleet.web._ports import WebPlatform as Platform

__all__ = ["KEPT_VIOLATIONS", "Compliance", "ComplianceCache"]

REPORT_TTL_SECONDS = 300.0
KEPT_VIOLATIONS = 10_000  # rows kept for the table; the counts cover every certificate
SHOWN_VIOLATIONS = 200


@dataclass
class Compliance:
    """One evaluation of the policy in force over the active inventory."""

    version: int | None
    at: dt.datetime
    tally: ComplianceTally = field(default_factory=ComplianceTally)
    rows: list[tuple[CertificateRecord, Violation]] = field(default_factory=list)

    def view(self, team: str | None) -> dict[str, object]:
        counts = self.tally.counts(team)
        rows = [(r, v) for r, v in self.rows if team is None or (r.team or "") == team][:SHOWN_VIOLATIONS]
        return {
            "evaluated": counts.certificates,
            "failing": counts.violating,
            "compliant": counts.compliant,
            "rules": counts.by_rule,
            "rows": rows,
        }


class ComplianceCache:
    """The report is a pass over every active certificate: computed once per policy version
    and at most every few minutes, unless a reader asks for a fresh one."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._lock = threading.Lock()
        self._cached: tuple[float, Compliance] | None = None

    def get(self, *, fresh: bool) -> Compliance:
        version, policy = self._platform.policy.active()
        with self._lock:
            cached = self._cached
        if (
            cached is not None
            and not fresh
            and cached[1].version == version
            and time.monotonic() - cached[0] < REPORT_TTL_SECONDS
        ):
            return cached[1]
        report = Compliance(version, self._platform.clock.now())
        for verdict in self._platform.policy.evaluate_inventory(policy):
            report.tally.add(verdict)
            for violation in verdict.violations:
                if len(report.rows) < KEPT_VIOLATIONS:
                    report.rows.append((verdict.record, violation))
        with self._lock:
            self._cached = (time.monotonic(), report)
        return report

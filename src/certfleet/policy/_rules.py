"""Rules, their violations, and a policy: an ordered set of rules evaluated as a pipeline."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from certfleet.policy._candidate import Candidate, Context
from certfleet.policy._checks import Check, RequiredEkus, SpiffeIdPrefixes
from certfleet.policy.errors import RuleViolation

__all__ = ["Policy", "Rule", "RuleScope", "RuleSeverity", "Violation"]


class RuleSeverity(enum.StrEnum):
    """How much a rule's violation matters (low to critical); not the discovery findings'
    ``Severity``, which also has ``info`` and ranks on its own scale."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(RuleSeverity).index(self)


class RuleScope(enum.StrEnum):
    """``all`` (the default) applies a rule to requests and to the inventory; ``inventory``
    only in reports (e.g. trusted issuers, which certfleet's own CA meets by definition);
    ``issuance`` only to requests."""

    ALL = "all"
    ISSUANCE = "issuance"
    INVENTORY = "inventory"

    def covers(self, context: Context) -> bool:
        return self is RuleScope.ALL or self.value == context.value


@dataclass(frozen=True)
class Violation:
    rule: str
    check: str
    severity: RuleSeverity
    enforce: bool
    reason: str
    preset: str | None = None  # the shipped preset the rule comes from
    clause: str | None = None  # its citation, e.g. "cabf-tls §validity: max 200 days ..."

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "check": self.check,
            "severity": self.severity.value,
            "enforce": self.enforce,
            "reason": self.reason,
        }
        if self.preset is not None:
            out |= {"preset": self.preset, "clause": self.clause}
        return out


@dataclass(frozen=True)
class Rule:
    """A named rule: selectors (``profiles``, ``teams``) say which certificates it concerns,
    its checks what they must satisfy. ``enforce=False`` reports without refusing.

    ``issued_from`` and ``issued_before`` select by notBefore (UTC dates, the first
    inclusive, the second exclusive): the CA/B Forum judges a certificate's validity by the
    rule in force on its issuance date. ``expires_from`` selects by notAfter (on or after):
    SP 800-57 allows 112-bit keys only for protection applied through 2030. ``preset`` names
    the shipped preset a rule comes from, whose ``description`` is then the clause a report
    cites."""

    name: str
    checks: tuple[Check, ...]
    severity: RuleSeverity = RuleSeverity.HIGH
    enforce: bool = True
    scope: RuleScope = RuleScope.ALL
    profiles: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    description: str = ""
    issued_from: dt.date | None = None
    issued_before: dt.date | None = None
    expires_from: dt.date | None = None
    preset: str | None = None

    def applies_to(self, candidate: Candidate, context: Context) -> bool:
        if not self.scope.covers(context):
            return False
        if self.profiles and candidate.profile not in self.profiles:
            return False
        if not self._issued_within(candidate.not_before):
            return False
        if self.expires_from is not None and not self._expires_from(candidate):
            return False
        return not self.teams or candidate.team in self.teams

    def _expires_from(self, candidate: Candidate) -> bool:
        if candidate.not_before is None or self.expires_from is None:
            return False
        not_after = candidate.not_before + candidate.validity
        return not_after.astimezone(dt.UTC).date() >= self.expires_from

    def _issued_within(self, not_before: dt.datetime | None) -> bool:
        if self.issued_from is None and self.issued_before is None:
            return True
        if not_before is None:
            return False  # no issuance date (a registration entry): not concerned
        day = not_before.astimezone(dt.UTC).date()
        if self.issued_from is not None and day < self.issued_from:
            return False
        return self.issued_before is None or day < self.issued_before

    def evaluate(self, candidate: Candidate, context: Context) -> Iterator[Violation]:
        if not self.applies_to(candidate, context):
            return
        for check in self.checks:
            decision = check.evaluate(candidate)
            if decision.reason is not None:
                clause = self.description if self.preset is not None else None
                yield Violation(
                    self.name, check.kind, self.severity, self.enforce, decision.reason, self.preset, clause
                )


@dataclass(frozen=True)
class Policy:
    """Rules in document order. An empty policy allows everything."""

    rules: tuple[Rule, ...] = ()

    def evaluate(self, candidate: Candidate, context: Context) -> tuple[Violation, ...]:
        """Every violation, enforced or not, in rule order."""
        return tuple(v for rule in self.rules for v in rule.evaluate(candidate, context))

    def check_issuance(self, candidate: Candidate) -> tuple[Violation, ...]:
        """Raise :class:`RuleViolation` when an enforced rule is broken; otherwise return the
        report-only violations (``enforce: false``) for the caller to record."""
        found = self.evaluate(candidate, Context.ISSUANCE)
        enforced = tuple(v for v in found if v.enforce)
        if enforced:
            raise RuleViolation(enforced)
        return found

    def check_registration(self, candidate: Candidate) -> tuple[Violation, ...]:
        """:meth:`check_issuance` with only the SPIFFE ID prefix checks: a registration entry
        has a SPIFFE ID and a team but no key or validity yet, so the other checks wait for
        its SVIDs' issuance, which runs every rule."""
        only_prefixes = tuple(
            dataclasses.replace(r, checks=tuple(c for c in r.checks if isinstance(c, SpiffeIdPrefixes)))
            for r in self.rules
            if any(isinstance(c, SpiffeIdPrefixes) for c in r.checks)
        )
        return Policy(only_prefixes).check_issuance(candidate)

    @property
    def needs_ekus(self) -> bool:
        """Whether a rule reads EKUs, which an inventory row only has inside its DER."""
        return any(isinstance(c, RequiredEkus) for r in self.rules for c in r.checks)

    @property
    def profiles(self) -> frozenset[str]:
        """Every profile a rule names, for the caller to check against the CA's profiles."""
        return frozenset(p for r in self.rules for p in r.profiles)

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

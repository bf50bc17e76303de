"""The policy engine: rules as code, evaluated as a pipeline of small checks.

One :class:`Policy` serves every issuance path (the issuance service calls
:meth:`Policy.check_issuance` before a serial is reserved) and the inventory's compliance
report (:meth:`Policy.evaluate` in :attr:`Context.INVENTORY`). It is pure: it knows neither
the CA nor storage; callers describe a certificate as a :class:`Candidate`.

The rule of the layers: this domain package owns its values (rules, violations, stored
:class:`PolicyVersion`) and the storage port it needs (:class:`PolicyRepository`);
``certfleet.services.policy`` orchestrates applying and enforcing it, one transaction per
use case; ``certfleet.store`` implements the port and nothing else.
"""

from __future__ import annotations

from certfleet.policy._candidate import Candidate, Context
from certfleet.policy._checks import Check, Decision
from certfleet.policy._matching import CERTFLEET_ISSUER, NamePattern
from certfleet.policy._parse import CHECK_KEYS, RULE_KEYS, parse_policy
from certfleet.policy._rules import Policy, Rule, RuleScope, RuleSeverity, Violation
from certfleet.policy._versions import PolicyRepository, PolicyVersion
from certfleet.policy.errors import PolicyParseError, RuleViolation

__all__ = [
    "CERTFLEET_ISSUER",
    "CHECK_KEYS",
    "RULE_KEYS",
    "Candidate",
    "Check",
    "Context",
    "Decision",
    "NamePattern",
    "Policy",
    "PolicyParseError",
    "PolicyRepository",
    "PolicyVersion",
    "Rule",
    "RuleScope",
    "RuleSeverity",
    "RuleViolation",
    "Violation",
    "parse_policy",
]

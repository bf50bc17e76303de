"""Errors of the policy engine.

::

    InvalidInput
    ├── PolicyParseError        a policy document that does not parse: one line, with file and line
    └── PolicyViolation
        └── RuleViolation       a request refused by one or more enforced rules (names the first)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from certfleet.errors import InvalidInput, PolicyViolation

if TYPE_CHECKING:
    from certfleet.policy._rules import Violation

__all__ = ["PolicyParseError", "RuleViolation"]


class PolicyParseError(InvalidInput):
    """``detail`` reads ``SOURCE:LINE: what is wrong`` so an editor can jump to it."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line


class RuleViolation(PolicyViolation):
    """A refusal: ``rule`` is the first enforced rule broken, ``check`` its kind (the YAML key,
    e.g. ``denied_names``) and ``violations`` every enforced violation found."""

    def __init__(self, violations: tuple[Violation, ...]) -> None:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        super().__init__(f"refused by policy rule {first.rule!r}: {first.reason}{more}", rule=first.rule)
        self.check = first.check
        self.violations = violations

    @property
    def about_names(self) -> bool:
        """True when the first broken check is about the requested names or addresses: an
        ACME server reports those as ``rejectedIdentifier`` (RFC 8555 section 6.7)."""
        return self.check in {"allowed_names", "denied_names", "ip_ranges"}

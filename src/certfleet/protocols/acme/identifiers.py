"""ACME identifiers (RFC 8555 section 9.7.7: ``dns``; RFC 8738: ``ip``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from certfleet.errors import CertfleetError
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.x509 import MAX_SANS, SubjectName

__all__ = ["Identifier", "parse_identifiers", "reverse_dns_name"]


@dataclass(frozen=True, order=True)
class Identifier:
    """``type`` is ``dns`` or ``ip``; ``value`` is normalised (lower case, compressed IP) and
    keeps a leading ``*.`` for a wildcard order identifier."""

    type: str
    value: str

    @property
    def is_wildcard(self) -> bool:
        return self.type == "dns" and self.value.startswith("*.")

    @property
    def base(self) -> str:
        """The name an authorization is for: the wildcard's parent (RFC 8555 section 7.1.4)."""
        return self.value[2:] if self.is_wildcard else self.value

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}

    def subject_name(self) -> SubjectName:
        return SubjectName(self.type, self.value)


def _parse_one(raw: object) -> Identifier:
    if not isinstance(raw, dict) or set(raw) - {"type", "value"}:
        raise AcmeProblem("malformed", "an identifier is an object with 'type' and 'value'")
    kind, value = raw.get("type"), raw.get("value")
    if not isinstance(kind, str) or not isinstance(value, str):
        raise AcmeProblem("malformed", "identifier 'type' and 'value' must be strings")
    if kind not in ("dns", "ip"):
        raise AcmeProblem("unsupportedIdentifier", f"identifier type {kind!r} is not supported (dns, ip)")
    try:
        name = SubjectName.parse(value)
    except CertfleetError as exc:
        raise AcmeProblem("rejectedIdentifier", exc.detail) from exc
    if kind == "ip":
        if name.kind != "ip" or value.strip() != value:
            raise AcmeProblem("malformed", f"{value!r} is not an IP address")
        return Identifier("ip", name.value)
    if name.kind == "ip":
        # RFC 8738 section 3: an address goes in an "ip" identifier, never in "dns".
        raise AcmeProblem("rejectedIdentifier", f"{value!r} is an IP address: use an 'ip' identifier")
    return Identifier("dns", name.value)


def parse_identifiers(
    raw: object, allowed: Callable[[Identifier], str | None] | None = None
) -> tuple[Identifier, ...]:
    """Parse a newOrder ``identifiers`` list. Every refused identifier becomes a subproblem
    of one ``rejectedIdentifier`` (RFC 8555 section 6.7.1), so a client learns them all at
    once. ``allowed`` returns a reason for an identifier the account may not have."""
    if not isinstance(raw, list) or not raw:
        raise AcmeProblem("malformed", "identifiers must be a non-empty list")
    if len(raw) > MAX_SANS:
        raise AcmeProblem("rejectedIdentifier", f"at most {MAX_SANS} identifiers per order")
    found: dict[Identifier, None] = {}
    problems: list[AcmeProblem] = []
    for item in raw:
        try:
            ident = _parse_one(item)
        except AcmeProblem as problem:
            if problem.kind not in ("rejectedIdentifier", "unsupportedIdentifier"):
                raise
            problem.identifier = _raw_identifier(item)
            problems.append(problem)
            continue
        reason = allowed(ident) if allowed else None
        if reason:
            problems.append(AcmeProblem("rejectedIdentifier", reason, identifier=ident.to_json()))
            continue
        found.setdefault(ident, None)
    if problems:
        kind = (
            "unsupportedIdentifier"
            if all(p.kind == "unsupportedIdentifier" for p in problems)
            else "rejectedIdentifier"
        )
        names = ", ".join(str((p.identifier or {}).get("value")) for p in problems)
        raise AcmeProblem(kind, f"this server will not issue for: {names}", subproblems=problems)
    return tuple(found)


def _raw_identifier(item: Any) -> dict[str, str]:
    if isinstance(item, dict):
        return {"type": str(item.get("type")), "value": str(item.get("value"))}
    return {"type": "unknown", "value": str(item)}


def names_equal(idents: Sequence[Identifier], names: Sequence[SubjectName]) -> bool:
    return {i.subject_name() for i in idents} == set(names)


def reverse_dns_name(address: str) -> str:
    """RFC 8738 section 6: the TLS-ALPN SNI for an IP identifier is its reverse DNS name."""
    return ipaddress.ip_address(address).reverse_pointer + "."

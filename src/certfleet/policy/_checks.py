"""The checks: one small validator per rule kind, each returning a decision (the shape of
step-ca's certificate policy, where tiny validators each accept or refuse).

A check's ``kind`` is the YAML key that configures it, so a refusal names both the rule and
what in it was broken.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from certfleet.policy._candidate import Candidate
from certfleet.policy._matching import IpNetwork, NamePattern, issuer_matches

__all__ = [
    "AllowedIssuers",
    "AllowedNames",
    "Check",
    "Decision",
    "DeniedNames",
    "IpRanges",
    "KeyTypes",
    "MaxValidity",
    "RequiredEkus",
    "SignatureAlgorithms",
    "SpiffeIdPrefixes",
]

_MAX_LISTED = 5


@dataclass(frozen=True)
class Decision:
    """``reason`` is None when the candidate passes."""

    reason: str | None = None

    @property
    def allowed(self) -> bool:
        return self.reason is None


ALLOW = Decision()


def _listed(values: Sequence[str]) -> str:
    shown = ", ".join(values[:_MAX_LISTED])
    return shown + (f" and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else "")


class Check(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def evaluate(self, candidate: Candidate) -> Decision: ...


@dataclass(frozen=True)
class KeyTypes(Check):
    kind: ClassVar[str] = "key_types"
    allowed: tuple[str, ...]

    def evaluate(self, candidate: Candidate) -> Decision:
        if candidate.key_type in self.allowed:
            return ALLOW
        return Decision(f"key type {candidate.key_type} is not allowed (allowed: {_listed(self.allowed)})")


@dataclass(frozen=True)
class MaxValidity(Check):
    kind: ClassVar[str] = "max_validity_days"
    days: int

    def evaluate(self, candidate: Candidate) -> Decision:
        if candidate.validity <= dt.timedelta(days=self.days):
            return ALLOW
        days = candidate.validity / dt.timedelta(days=1)
        shown = f"{days:.0f}" if days == int(days) else f"{days:.2f}"
        return Decision(f"validity of {shown} days exceeds the maximum of {self.days} days")


@dataclass(frozen=True)
class AllowedNames(Check):
    """Every name (DNS name or IP address) must match one of the patterns: an allow-list
    leaves nothing out, so an IP address needs an entry (address or CIDR) too."""

    kind: ClassVar[str] = "allowed_names"
    patterns: tuple[NamePattern, ...]

    def evaluate(self, candidate: Candidate) -> Decision:
        outside = [n for n in candidate.names if not any(p.matches(n) for p in self.patterns)]
        if not outside:
            return ALLOW
        allowed = _listed([p.text for p in self.patterns])
        return Decision(f"name {_listed(outside)} is not allowed (allowed: {allowed})")


@dataclass(frozen=True)
class DeniedNames(Check):
    kind: ClassVar[str] = "denied_names"
    patterns: tuple[NamePattern, ...]

    def evaluate(self, candidate: Candidate) -> Decision:
        for name in candidate.names:
            for pattern in self.patterns:
                if pattern.overlaps(name):
                    how = "is denied" if pattern.matches(name) else "covers a denied name"
                    return Decision(f"name {name} {how} (denied: {pattern.text})")
        return ALLOW


@dataclass(frozen=True)
class IpRanges(Check):
    """Every IP address must lie in one of the ranges; DNS names are not concerned."""

    kind: ClassVar[str] = "ip_ranges"
    networks: tuple[IpNetwork, ...]

    def evaluate(self, candidate: Candidate) -> Decision:
        for name in candidate.names:
            try:
                address = ipaddress.ip_address(name)
            except ValueError:
                continue  # a DNS name
            if not any(address in network for network in self.networks):
                ranges = _listed([str(n) for n in self.networks])
                return Decision(f"IP address {name} is outside the allowed ranges ({ranges})")
        return ALLOW


@dataclass(frozen=True)
class AllowedIssuers(Check):
    kind: ClassVar[str] = "allowed_issuers"
    issuers: tuple[str, ...]

    def evaluate(self, candidate: Candidate) -> Decision:
        if any(issuer_matches(e, candidate.issuer, candidate.issuer_ca_id) for e in self.issuers):
            return ALLOW
        shown = candidate.issuer or "an unknown issuer"
        return Decision(f"issuer {shown} is not trusted (allowed: {_listed(self.issuers)})")


@dataclass(frozen=True)
class SignatureAlgorithms(Check):
    """``allowed`` holds the names cryptography gives the OIDs (``ecdsa-with-SHA256``,
    ``sha256WithRSAEncryption``), compared case-insensitively."""

    kind: ClassVar[str] = "signature_algorithms"
    allowed: tuple[str, ...]

    def evaluate(self, candidate: Candidate) -> Decision:
        algorithm = candidate.signature_algorithm
        if algorithm is not None and algorithm.lower() in {a.lower() for a in self.allowed}:
            return ALLOW
        shown = algorithm or "unknown"
        return Decision(f"signature algorithm {shown} is not allowed (allowed: {_listed(self.allowed)})")


@dataclass(frozen=True)
class RequiredEkus(Check):
    """``required`` maps dotted OIDs to the names the rule gave them, for messages."""

    kind: ClassVar[str] = "required_ekus"
    required: tuple[tuple[str, str], ...]

    def evaluate(self, candidate: Candidate) -> Decision:
        missing = [name for oid, name in self.required if oid not in candidate.ekus]
        if not missing:
            return ALLOW
        return Decision(f"extended key usage {_listed(missing)} is missing")


@dataclass(frozen=True)
class SpiffeIdPrefixes(Check):
    """Every SPIFFE ID of the candidate must lie under one of the prefixes, by whole path
    segments (``spiffe://td/ns/pay`` covers ``spiffe://td/ns/pay/api``, not
    ``spiffe://td/ns/payroll``). A certificate without a SPIFFE ID is not concerned."""

    kind: ClassVar[str] = "spiffe_id_prefixes"
    prefixes: tuple[str, ...]

    def evaluate(self, candidate: Candidate) -> Decision:
        outside = [
            i for i in candidate.spiffe_ids if not any(i == p or i.startswith(p + "/") for p in self.prefixes)
        ]
        if not outside:
            return ALLOW
        allowed = _listed(self.prefixes)
        return Decision(f"SPIFFE ID {_listed(outside)} is not allowed (allowed prefixes: {allowed})")

"""Validation of the names that go into certificates (RFC 5280 section 4.2.1.6, RFC 1035)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509

from certfleet.x509.errors import BadName

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_SANS",
    "SubjectName",
    "names_from_extension",
    "parse_names",
    "to_general_names",
]

MAX_NAME_BYTES = 253
MAX_SANS = 100
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, order=True)
class SubjectName:
    """One subject alternative name: ``kind`` is ``dns`` or ``ip``; ``value`` is normalised."""

    kind: str
    value: str

    @classmethod
    def parse(cls, raw: str) -> SubjectName:
        text = raw.strip()
        if not text:
            raise BadName("empty name")
        try:
            ip = ipaddress.ip_address(text.strip("[]"))
        except ValueError:
            return cls("dns", _check_dns_name(text))
        return cls("ip", ip.compressed)

    def general_name(self) -> x509.GeneralName:
        if self.kind == "ip":
            return x509.IPAddress(ipaddress.ip_address(self.value))
        return x509.DNSName(self.value)

    @property
    def is_wildcard(self) -> bool:
        return self.kind == "dns" and self.value.startswith("*.")


def _check_dns_name(raw: str) -> str:
    name = raw.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name.isascii():
        raise BadName(f"name {raw!r} has non-ASCII characters: use its A-label (xn--) form")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise BadName(f"name {raw[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
    labels = name.split(".")
    for index, label in enumerate(labels):
        if label == "":
            raise BadName(f"name {raw!r} has an empty label")
        if "*" in label:
            if label != "*":
                raise BadName(f"name {raw!r} has a partial wildcard label {label!r}")
            if index != 0:
                raise BadName(f"name {raw!r} has a wildcard that is not the leftmost label")
            continue
        if len(label) > 63:
            raise BadName(f"name {raw!r} has a label longer than 63 characters")
        if not _LABEL.match(label):
            raise BadName(f"name {raw!r} has illegal characters in label {label!r}")
    if labels[0] == "*" and len(labels) < 3:
        raise BadName(f"wildcard name {raw!r} must have at least two labels after '*'")
    if name.count("*") > 1:
        raise BadName(f"name {raw!r} has more than one wildcard")
    return name


def parse_names(raw_names: Iterable[str]) -> tuple[SubjectName, ...]:
    """Parse, normalise and de-duplicate names, keeping their order; refuse over 100."""
    seen: dict[SubjectName, None] = {}
    for raw in raw_names:
        seen.setdefault(SubjectName.parse(raw), None)
    if len(seen) > MAX_SANS:
        raise BadName(f"{len(seen)} subject alternative names given; at most {MAX_SANS} are allowed")
    return tuple(seen)


def to_general_names(names: Sequence[SubjectName]) -> list[x509.GeneralName]:
    return [n.general_name() for n in names]


def names_from_extension(san: x509.SubjectAlternativeName) -> list[str]:
    """Every DNS name and IP address in a SAN extension, as text (other kinds are skipped)."""
    out: list[str] = list(san.get_values_for_type(x509.DNSName))
    out.extend(ip.compressed for ip in san.get_values_for_type(x509.IPAddress))
    return out

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
        if text.startswith("[") and text.endswith("]") and ":" in text:
            text = text[1:-1]  # the URL form of an IPv6 address
        if "%" in text:
            # A zone index (fe80::1%eth0) is local to one host; RFC 5280 4.2.1.6 iPAddress
            # holds only the 16 address octets, so it would be silently dropped.
            raise BadName(f"address {raw!r} has a zone index; certificates hold only the bare address")
        if ":" in text:
            try:
                return cls("ip", ipaddress.IPv6Address(text).compressed)
            except ValueError:
                raise BadName(f"{raw!r} is not a valid IPv6 address or DNS name") from None
        try:
            return cls("ip", ipaddress.IPv4Address(text).compressed)
        except ValueError:
            return cls("dns", _check_dns_name(text))

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
    if name.count("*") > 1:
        raise BadName(f"name {raw!r} has more than one wildcard")
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
    if labels[-1].isdigit():
        # RFC 3696 section 2: a top-level domain is never all-numeric. Such a name is an
        # IPv4 address written wrongly (010.0.0.1, 1.2.3, 256.1.1.1), not a host name.
        raise BadName(f"name {raw!r} is neither a valid IPv4 address nor a DNS name (numeric last label)")
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

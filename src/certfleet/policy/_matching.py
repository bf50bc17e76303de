"""How rules match names and issuers.

Name patterns follow the API tokens' grammar, so one vocabulary describes who may ask for
what: ``example.test`` matches itself; ``*.example.test`` one label below (and the wildcard
name itself); ``**.example.test`` any depth below; a CIDR such as ``10.0.0.0/8`` the IP
addresses inside it; an IP address itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.x509.oid import NameOID

from certfleet.x509 import BadName, SubjectName

__all__ = ["CERTFLEET_ISSUER", "IpNetwork", "NamePattern", "issuer_matches", "parse_network"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: In ``allowed_issuers``, this word means "issued by one of certfleet's own CAs".
CERTFLEET_ISSUER = "certfleet"


def parse_network(raw: str) -> IpNetwork:
    """A CIDR block; host bits set (``10.0.0.1/8``) is refused as the likely typo it is."""
    try:
        return ipaddress.ip_network(raw.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{raw!r} is not an IP network ({exc})") from None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


@dataclass(frozen=True)
class NamePattern:
    text: str
    network: IpNetwork | None = None

    @classmethod
    def parse(cls, raw: str) -> NamePattern:
        text = raw.strip().lower()
        if not text:
            raise ValueError("empty name pattern")
        if "/" in text:
            return cls(text, parse_network(text))
        base = text.removeprefix("**.").removeprefix("*.")
        if "*" in base:
            raise ValueError(f"bad name pattern {raw!r}: '*' or '**' only as the whole leftmost label")
        try:
            parsed = SubjectName.parse(base)
        except BadName as exc:
            raise ValueError(exc.detail) from None
        if parsed.kind == "ip":
            if base != text:
                raise ValueError(f"bad name pattern {raw!r}: a wildcard cannot precede an IP address")
            return cls(parsed.value, ipaddress.ip_network(parsed.value))
        return cls(text)

    def matches(self, name: str) -> bool:
        """Does this pattern allow exactly ``name`` (normalised: lower case, compressed IP)?"""
        address = _ip(name)
        if self.network is not None:
            return address is not None and address in self.network
        if address is not None:
            return False
        if self.text.startswith("**."):
            suffix = self.text[2:]
            return name.endswith(suffix) and len(name) > len(suffix)
        if self.text.startswith("*."):
            suffix = self.text[1:]
            if name == self.text:
                return True
            head = name[: -len(suffix)] if name.endswith(suffix) else ""
            return bool(head) and "." not in head and head != "*"
        return name == self.text

    def overlaps(self, name: str) -> bool:
        """Could a certificate for ``name`` be used for a name this pattern matches?

        A denied name must also refuse a wildcard that covers it: ``*.a.example.test`` is
        valid for ``admin.a.example.test`` (RFC 6125 section 6.4.3), so denying the latter
        and issuing the former would hand out the denied name anyway.
        """
        if self.matches(name):
            return True
        if not name.startswith("*.") or self.network is not None:
            return False
        if "*" in self.text:
            return False  # wildcard patterns against a wildcard name: matches() decided
        base = name[1:]  # ".a.example.test"
        head = self.text[: -len(base)] if self.text.endswith(base) else ""
        return bool(head) and "." not in head


@lru_cache(maxsize=4096)
def _issuer_values(issuer_dn: str) -> frozenset[str]:
    """CN, O and OU of an RFC 4514 issuer DN, case-folded (cached: a fleet has few issuers)."""
    try:
        name = x509.Name.from_rfc4514_string(issuer_dn)
    except ValueError:
        return frozenset()
    wanted = (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME)
    values: set[str] = set()
    for oid in wanted:
        for attribute in name.get_attributes_for_oid(oid):
            value = attribute.value
            values.add((value if isinstance(value, str) else value.decode(errors="replace")).casefold())
    return frozenset(values)


def issuer_matches(entry: str, issuer_dn: str, issuer_ca_id: str | None) -> bool:
    """An ``allowed_issuers`` entry matches the word ``certfleet`` (one of certfleet's CAs), a
    CA id, the whole issuer DN, or the value of the issuer's CN, O or OU (case-insensitive):
    ``Let's Encrypt`` is the O of every Let's Encrypt intermediate, whatever its CN."""
    folded = entry.casefold()
    if folded == CERTFLEET_ISSUER:
        return issuer_ca_id is not None
    if issuer_ca_id is not None and entry == issuer_ca_id:
        return True
    return folded == issuer_dn.casefold() or folded in _issuer_values(issuer_dn)

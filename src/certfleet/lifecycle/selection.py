"""Selection expressions of rotation campaigns: ``key=rsa-2048,issuer=<ca-id>``.

Terms are ``field=value`` separated by commas or spaces. Different fields must all match;
one field given twice matches either value (``key=rsa-2048,key=rsa-3072``). Fields:

========================  ================================================================
``key`` (``key_type``)    key type (``rsa-2048``, ``ec-p256``, ``ml-dsa-65``) or algorithm (``rsa``)
``key-size``              key size in bits (curve size for EC)
``issuer``                issuing CA id, or a substring of the issuer DN (case-insensitive)
``ca``                    issuing CA id exactly
``sig``                   signature algorithm (``sha256WithRSAEncryption``, ``ecdsa-with-SHA256``)
``expires-within``        expiring within a duration (``30d``)
``expires-before``        expiring before a date (``2027-01-01``) or date-time
``team``, ``tag``         owning team; one of the tags
``name``                  a shell pattern on the SANs and common name (``*.example.test``)
``profile``, ``serial``   profile name; serial (hex)
========================  ================================================================
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

from certfleet.errors import InvalidInput
from certfleet.inventory import CertificateRecord
from certfleet.inventory.crypto import classify_key
from certfleet.lifecycle.planning import parse_duration
from certfleet.x509 import KeyDescription

__all__ = ["FIELDS", "Selection"]

FIELDS = (
    "key",
    "key-size",
    "issuer",
    "ca",
    "sig",
    "expires-within",
    "expires-before",
    "team",
    "tag",
    "name",
    "profile",
    "serial",
)
_ALIASES = {"signature": "sig", "key-type": "key", "issuer-ca": "ca", "expires": "expires-within"}
# Field names are spelled with hyphens or underscores (``key_type=rsa-2048``).
_TERM = re.compile(r"^([a-z_-]+)=(.+)$")


def _parse_date(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"bad date {text!r}: expected YYYY-MM-DD or an ISO 8601 date-time") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _check(field: str, value: str) -> None:
    if field == "key-size" and not value.isdigit():
        raise InvalidInput(f"key-size must be a number of bits, got {value!r}")
    if field == "expires-within":
        parse_duration(value)
    if field == "expires-before":
        _parse_date(value)


@dataclass(frozen=True)
class Selection:
    """A parsed selection: field -> accepted values (lowercased where matching ignores case)."""

    terms: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def parse(cls, text: str) -> Selection:
        pieces = [p for p in re.split(r"[,\s]+", text.strip()) if p]
        if not pieces:
            raise InvalidInput("empty selection: give terms like key=rsa-2048,issuer=<ca-id>")
        terms: dict[str, list[str]] = {}
        for piece in pieces:
            match = _TERM.match(piece)
            if not match:
                raise InvalidInput(f"bad selection term {piece!r}: expected field=value")
            name = match.group(1).replace("_", "-")
            field = _ALIASES.get(name, name)
            if field not in FIELDS:
                raise InvalidInput(
                    f"unknown selection field {match.group(1)!r}: expected one of {', '.join(FIELDS)}"
                )
            value = match.group(2)
            _check(field, value)
            terms.setdefault(field, []).append(value)
        return cls(tuple((f, tuple(v)) for f, v in sorted(terms.items())))

    def __str__(self) -> str:
        return ",".join(f"{field}={value}" for field, values in self.terms for value in values)

    @property
    def fields(self) -> Mapping[str, tuple[str, ...]]:
        return dict(self.terms)

    def single(self, field: str) -> str | None:
        """The value of a field given exactly once (a storage query can narrow on it)."""
        values = self.fields.get(field, ())
        return values[0] if len(values) == 1 else None

    def matches(self, record: CertificateRecord, now: dt.datetime) -> bool:
        return all(any(_match(field, v, record, now) for v in values) for field, values in self.terms)


def _match(field: str, value: str, record: CertificateRecord, now: dt.datetime) -> bool:
    lowered = value.lower()
    if field == "key":
        # The inventory's classification names ML-DSA whatever the record stored for it.
        algorithm = classify_key(record.key_algorithm, record.key_size)
        label = KeyDescription(record.key_algorithm, record.key_size).label
        return lowered in (label, record.key_algorithm, algorithm.label, algorithm.family)
    if field == "key-size":
        return record.key_size == int(value)
    if field == "issuer":
        return record.issuer_ca_id == value or lowered in record.issuer.lower()
    if field == "ca":
        return record.issuer_ca_id == value
    if field == "sig":
        return record.signature_algorithm.lower() == lowered
    if field == "expires-within":
        return now <= record.not_after <= now + parse_duration(value)
    if field == "expires-before":
        return record.not_after < _parse_date(value)
    if field == "team":
        return record.team == value
    if field == "tag":
        return value in record.tags
    if field == "name":
        names = [n.lower() for n in (*record.sans, record.common_name or "")]
        return any(fnmatch.fnmatchcase(n, lowered) for n in names if n)
    if field == "profile":
        return record.profile == value
    if field == "serial":
        return record.serial == lowered.replace(":", "").lstrip("0")
    raise AssertionError(field)  # pragma: no cover - parse() admits only FIELDS

"""API tokens: scopes, name patterns, and how they are minted and checked.

A token is ``cf_<id>_<secret>``. Only SHA-256 of the secret is stored: the secret has 256
bits of entropy, so a slow password hash would add nothing but latency to every request.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from certfleet.clock import iso
from certfleet.errors import Forbidden, InvalidInput, Unauthenticated
from certfleet.x509 import SubjectName

__all__ = [
    "ApiToken",
    "MintedToken",
    "NamePattern",
    "Principal",
    "Scope",
    "TokenRepository",
    "check_secret",
    "hash_secret",
    "mint_token",
    "split_token",
]

_PREFIX = "cf"


class Scope(enum.StrEnum):
    """What a token may do. ``issue`` and ``revoke`` are separate rights, as in Vault's PKI
    (``pki/issue/*`` and ``pki/revoke`` are separate policy paths): the pipeline that asks
    for certificates should not, by default, be able to take them away, and with
    ``keyCompromise`` block their keys everywhere. Both include ``read``; ``admin`` includes
    everything and is not bound by name patterns or team."""

    READ = "read"
    ISSUE = "issue"
    REVOKE = "revoke"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        return self is needed or self is Scope.ADMIN or needed is Scope.READ

    @property
    def needs_patterns(self) -> bool:
        """Issue and revoke tokens act only on names their ``--allow-names`` patterns match."""
        return self in (Scope.ISSUE, Scope.REVOKE)

    @classmethod
    def parse(cls, value: str) -> Scope:
        try:
            return cls(value)
        except ValueError:
            raise InvalidInput(f"unknown scope {value!r}: expected read, issue, revoke or admin") from None


@dataclass(frozen=True)
class NamePattern:
    """``example.test`` matches itself; ``*.example.test`` one label below (and the wildcard
    name itself); ``**.example.test`` any depth below; a CIDR such as ``10.0.0.0/8`` matches
    IP addresses inside it."""

    text: str

    @classmethod
    def parse(cls, raw: str) -> NamePattern:
        text = raw.strip().lower()
        if not text:
            raise InvalidInput("empty name pattern")
        if "/" in text:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError as exc:
                raise InvalidInput(f"bad network pattern {raw!r}") from exc
            return cls(text)
        base = text.removeprefix("**.").removeprefix("*.")
        if "*" in base:
            raise InvalidInput(f"bad name pattern {raw!r}: '*' or '**' only as the leftmost label")
        SubjectName.parse(base)
        return cls(text)

    def matches(self, name: SubjectName) -> bool:
        if "/" in self.text:
            return name.kind == "ip" and ipaddress.ip_address(name.value) in ipaddress.ip_network(
                self.text, strict=False
            )
        if name.kind == "ip":
            return SubjectName.parse(self.text) == name if "*" not in self.text else False
        value = name.value
        if self.text.startswith("**."):
            suffix = self.text[2:]
            return value.endswith(suffix) and len(value) > len(suffix)
        if self.text.startswith("*."):
            suffix = self.text[1:]
            if value == self.text:
                return True
            head = value[: -len(suffix)] if value.endswith(suffix) else ""
            return bool(head) and "." not in head and head != "*"
        return value == self.text


@dataclass(frozen=True)
class ApiToken:
    id: str
    team: str
    scope: Scope
    allow_names: tuple[NamePattern, ...]
    secret_hash: str
    created_at: dt.datetime
    description: str = ""
    revoked_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team": self.team,
            "scope": self.scope.value,
            "allow_names": [p.text for p in self.allow_names],
            "description": self.description,
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at),
        }


# Principal names are "kind:id" (services.tokens, access._est_credentials, services.scep,
# agents._records); a refusal names the kind the caller knows itself by.
_CALLED = {
    "token": "this token",
    "est": "this EST credential",
    "scep": "this SCEP challenge",
    "agent": "this agent",
}


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what they may do."""

    name: str
    team: str | None
    scope: Scope
    allow_names: tuple[NamePattern, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.scope is Scope.ADMIN

    def require(self, needed: Scope) -> None:
        if not self.scope.allows(needed):
            raise Forbidden(f"this token has scope {self.scope.value}; {needed.value} is required")

    def can_see_team(self, team: str | None) -> bool:
        return self.is_admin or (team is not None and team == self.team)

    def authorize_names(self, names: Iterable[SubjectName]) -> None:
        """Least privilege: a non-admin may issue only names one of its patterns allows."""
        if self.is_admin:
            return
        for name in names:
            if not any(p.matches(name) for p in self.allow_names):
                raise Forbidden(f"{self._described} may not issue for {name.value!r}")

    @property
    def _described(self) -> str:
        """What a refusal calls the caller: "this token", "this EST credential", ..."""
        kind = self.name.partition(":")[0]
        return _CALLED.get(kind, self.name)

    def authorize_revocation(
        self, names: Sequence[SubjectName], *, unmatchable: Sequence[str] = (), agent: str | None = None
    ) -> None:
        """Revoking obeys the patterns issuing does: every name of the certificate must match
        one of this principal's patterns (``names`` are its DNS names, IP addresses and CN;
        ``unmatchable`` what no pattern can match, such as a URI SAN). The identity of agent
        ``agent`` is only for an admin or that agent itself: a team token must not be able
        to cut an agent off (or, with keyCompromise, block its key)."""
        self.require(Scope.REVOKE)
        if self.is_admin:
            return
        if agent is not None:
            if self.name != f"agent:{agent}":
                raise Forbidden(
                    f"this certificate is the identity of agent {agent!r}: "
                    "only an admin or that agent may revoke it"
                )
            return
        if unmatchable:
            raise Forbidden(f"this token may not revoke a certificate for {unmatchable[0]!r}")
        if not names:
            raise Forbidden("this certificate has no name a pattern could match: only an admin may revoke it")
        for name in names:
            if not any(p.matches(name) for p in self.allow_names):
                raise Forbidden(f"this token may not revoke a certificate for {name.value!r}")


@dataclass(frozen=True)
class MintedToken:
    token: str
    record: ApiToken


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint_token(
    team: str, scope: Scope, allow_names: Sequence[str], now: dt.datetime, description: str = ""
) -> MintedToken:
    if not team.strip():
        raise InvalidInput("a token needs a team")
    patterns = tuple(NamePattern.parse(p) for p in allow_names)
    if scope.needs_patterns and not patterns:
        raise InvalidInput(f"a token with the {scope.value} scope needs at least one --allow-names pattern")
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = ApiToken(token_id, team.strip(), scope, patterns, hash_secret(secret), now, description)
    return MintedToken(f"{_PREFIX}_{token_id}_{secret}", record)


def split_token(token: str) -> tuple[str, str]:
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != _PREFIX or not token_id or not secret:
        raise Unauthenticated("malformed API token")
    return token_id, secret


def check_secret(record: ApiToken, secret: str) -> bool:
    return hmac.compare_digest(record.secret_hash, hash_secret(secret))


class TokenRepository(Protocol):
    def add(self, token: ApiToken) -> None: ...

    def get(self, token_id: str) -> ApiToken | None: ...

    def list(self) -> Sequence[ApiToken]: ...

    def revoke(self, token_id: str, at: dt.datetime) -> bool:
        """Mark revoked; False if unknown or already revoked."""
        ...

"""EST HTTP Basic credentials (RFC 7030 section 3.2.3): one per team (and optionally one
profile and a few name patterns), minted once, stored as a hash, checked in constant time.

The username is ``est_<id>`` and the password 256 random bits: as for API tokens, a slow
password hash would add latency to every enrolment and no protection a random secret lacks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from certfleet.access._tokens import NamePattern, Principal, Scope
from certfleet.clock import iso
from certfleet.errors import InvalidInput

__all__ = ["EstCredential", "EstCredentialRepository", "MintedEstCredential", "mint_est_credential"]

_USER_PREFIX = "est_"


@dataclass(frozen=True)
class EstCredential:
    """Who may enrol over EST with Basic authentication, for which team, profile and names.
    ``allow_names`` empty means any name the team's policy allows."""

    id: str
    team: str
    profile: str | None
    allow_names: tuple[NamePattern, ...]
    secret_sha256: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def username(self) -> str:
        return f"{_USER_PREFIX}{self.id}"

    def matches(self, password: str) -> bool:
        """Constant-time comparison of the password's hash with the stored one."""
        candidate = hashlib.sha256(password.encode()).hexdigest()
        return hmac.compare_digest(candidate, self.secret_sha256)

    def principal(self) -> Principal | None:
        """The caller as the issuance service judges names: bound by the credential's name
        patterns, or None when it has none (then only the team's policy limits the names)."""
        if not self.allow_names:
            return None
        return Principal(f"est:{self.id}", self.team, Scope.ISSUE, self.allow_names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "team": self.team,
            "profile": self.profile,
            "names": [p.text for p in self.allow_names],
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at),
        }

    @staticmethod
    def id_of(username: str) -> str | None:
        """The credential id a Basic username names, or None if it names none."""
        if not username.startswith(_USER_PREFIX) or len(username) == len(_USER_PREFIX):
            return None
        return username[len(_USER_PREFIX) :]


@dataclass(frozen=True)
class MintedEstCredential:
    """The credential and its password, which exists only here: shown once."""

    record: EstCredential
    password: str

    @property
    def basic(self) -> str:
        """``username:password``, as ``curl --user`` takes it."""
        return f"{self.record.username}:{self.password}"


def mint_est_credential(
    team: str, profile: str | None, names: Sequence[str], now: dt.datetime
) -> MintedEstCredential:
    if not team.strip():
        raise InvalidInput("an EST credential needs a team")
    patterns = tuple(NamePattern.parse(n) for n in names)
    password = secrets.token_urlsafe(32)
    record = EstCredential(
        id=secrets.token_hex(6),
        team=team.strip(),
        profile=profile,
        allow_names=patterns,
        secret_sha256=hashlib.sha256(password.encode()).hexdigest(),
        created_at=now,
    )
    return MintedEstCredential(record, password)


class EstCredentialRepository(Protocol):
    def add(self, credential: EstCredential) -> None: ...

    def get(self, credential_id: str) -> EstCredential | None: ...

    def list(self) -> Sequence[EstCredential]: ...

    def revoke(self, credential_id: str, at: dt.datetime) -> bool:
        """Mark revoked; False if unknown or already revoked."""
        ...

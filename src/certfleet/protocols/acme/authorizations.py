"""Authorizations and their challenges (RFC 8555 sections 7.1.4, 7.1.5, 7.5)."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from certfleet.protocols.acme.identifiers import Identifier
from certfleet.protocols.acme.jws import b64encode

__all__ = [
    "Authorization",
    "AuthorizationRepository",
    "AuthzStatus",
    "Challenge",
    "ChallengeStatus",
    "challenge_types_for",
    "new_authorization",
]

HTTP_01 = "http-01"
DNS_01 = "dns-01"
TLS_ALPN_01 = "tls-alpn-01"
PENDING_AUTHZ_LIFETIME = dt.timedelta(days=7)


class AuthzStatus(enum.StrEnum):
    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"
    DEACTIVATED = "deactivated"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ChallengeStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Challenge:
    id: str
    authz_id: str
    type: str
    token: str
    status: ChallengeStatus
    validated_at: dt.datetime | None = None
    error: dict[str, Any] | None = None

    def to_json(self, url: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "url": url,
            "token": self.token,
            "status": self.status.value,
        }
        if self.validated_at:
            body["validated"] = _iso(self.validated_at)
        if self.error:
            body["error"] = self.error
        return body


@dataclass(frozen=True)
class Authorization:
    """``identifier`` is the name validated (a wildcard's parent, RFC 8555 section 7.1.4)."""

    id: str
    account_id: str
    identifier: Identifier
    wildcard: bool
    status: AuthzStatus
    expires_at: dt.datetime
    created_at: dt.datetime
    challenges: tuple[Challenge, ...] = field(default=())
    validated_at: dt.datetime | None = None
    caa_checked_at: dt.datetime | None = None

    def effective_status(self, now: dt.datetime) -> AuthzStatus:
        if self.status in (AuthzStatus.PENDING, AuthzStatus.VALID) and self.expires_at <= now:
            return AuthzStatus.EXPIRED
        return self.status

    def challenge(self, challenge_id: str) -> Challenge | None:
        return next((c for c in self.challenges if c.id == challenge_id), None)

    def to_json(self, now: dt.datetime, challenge_url: Any) -> dict[str, Any]:
        status = self.effective_status(now)
        challenges = self.challenges
        if status is AuthzStatus.VALID:
            # RFC 8555 section 7.1.4: a valid authorization lists the challenge that succeeded.
            challenges = tuple(c for c in challenges if c.status is ChallengeStatus.VALID) or challenges
        body: dict[str, Any] = {
            "identifier": self.identifier.to_json(),
            "status": status.value,
            "expires": _iso(self.expires_at),
            "challenges": [c.to_json(challenge_url(c.id)) for c in challenges],
        }
        if self.wildcard:
            body["wildcard"] = True
        return body


def challenge_types_for(identifier: Identifier, wildcard: bool) -> tuple[str, ...]:
    """Wildcards only through dns-01 (RFC 8555 section 7.1.3); IP addresses never through
    dns-01 (RFC 8738 section 7)."""
    if wildcard:
        return (DNS_01,)
    if identifier.type == "ip":
        return (HTTP_01, TLS_ALPN_01)
    return (HTTP_01, DNS_01, TLS_ALPN_01)


def new_authorization(account_id: str, order_identifier: Identifier, now: dt.datetime) -> Authorization:
    authz_id = secrets.token_urlsafe(12)
    wildcard = order_identifier.is_wildcard
    identifier = Identifier(order_identifier.type, order_identifier.base)
    challenges = tuple(
        Challenge(
            id=secrets.token_urlsafe(12),
            authz_id=authz_id,
            type=kind,
            # RFC 8555 section 8.1: at least 128 bits of entropy, base64url.
            token=b64encode(secrets.token_bytes(32)),
            status=ChallengeStatus.PENDING,
        )
        for kind in challenge_types_for(identifier, wildcard)
    )
    return Authorization(
        id=authz_id,
        account_id=account_id,
        identifier=identifier,
        wildcard=wildcard,
        status=AuthzStatus.PENDING,
        expires_at=now + PENDING_AUTHZ_LIFETIME,
        created_at=now,
        challenges=challenges,
    )


class AuthorizationRepository(Protocol):
    def add(self, authz: Authorization) -> None: ...

    def get(self, authz_id: str) -> Authorization | None: ...

    def get_by_challenge(self, challenge_id: str) -> Authorization | None: ...

    def find_reusable(
        self, account_id: str, identifier: Identifier, wildcard: bool, now: dt.datetime
    ) -> Authorization | None:
        """A valid, unexpired authorization of this account for this name."""
        ...

    def valid_names(self, account_id: str, now: dt.datetime) -> set[Identifier]:
        """Every identifier this account holds a valid, unexpired authorization for
        (wildcard authorizations as ``*.name``)."""
        ...

    def start_challenge(self, challenge_id: str, at: dt.datetime | None = None) -> bool:
        """pending -> processing (since ``at``); False when it was not pending (a concurrent
        request won)."""
        ...

    def stalled_challenges(self, before: dt.datetime) -> Sequence[str]:
        """Challenges processing since before ``before``: their validation worker died."""
        ...

    def finish_challenge(
        self,
        challenge_id: str,
        status: ChallengeStatus,
        at: dt.datetime,
        error: dict[str, Any] | None,
    ) -> None: ...

    def set_status(
        self,
        authz_id: str,
        status: AuthzStatus,
        *,
        expected: Sequence[AuthzStatus],
        validated_at: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
        caa_checked_at: dt.datetime | None = None,
    ) -> bool:
        """Conditional update; False when the stored status is not one of ``expected``."""
        ...

    def mark_caa_checked(self, authz_id: str, at: dt.datetime) -> None: ...

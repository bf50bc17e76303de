"""OpenID Connect's rules for the values a sign-in carries: PKCE (RFC 7636), and the ID token
(OpenID Connect Core 1.0 section 3.1.3.7), checked in full here, bytes and keys in, claims
out. No network: the caller fetches the provider's keys and passes them in.

Every refusal is a :class:`SignInRefused` whose detail says which rule failed, shown to the
user on the 403 page; none of them opens a session."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from certfleet.errors import CertfleetError

__all__ = [
    "ALGORITHMS",
    "IdToken",
    "ProviderUnavailable",
    "SignInRefused",
    "key_ids",
    "pkce_challenge",
    "pkce_verifier",
    "token_key_id",
    "verify_id_token",
]

# Asymmetric only: an HS256 token would be "signed" with our own client secret.
ALGORITHMS = ("RS256", "ES256")


class SignInRefused(CertfleetError, http_status=403, title="Sign-in refused"):
    """The identity provider's answer broke a rule; the user is not signed in."""


class ProviderUnavailable(SignInRefused, http_status=502, title="Identity provider unavailable"):
    """The provider could not be reached or answered with an error page: try again later."""


@dataclass(frozen=True)
class IdToken:
    """The verified claims certfleet uses: who (``sub``, with ``email`` for people to read) and
    the raw claims, from which the groups are read."""

    subject: str
    email: str | None
    claims: Mapping[str, Any]

    @property
    def actor(self) -> str:
        """The audit log's actor: the e-mail address when the provider gives one."""
        return f"oidc:{self.email or self.subject}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def pkce_verifier() -> str:
    """43 characters from 32 random bytes: the RFC 7636 section 4.1 minimum length, full entropy."""
    return _b64(secrets.token_bytes(32))


def pkce_challenge(verifier: str) -> str:
    """``S256``: BASE64URL(SHA256(verifier)) (RFC 7636 section 4.2)."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def token_key_id(id_token: str) -> str | None:
    """The ``kid`` of an ID token's header (unverified), to pick or refetch the key."""
    try:
        header = jws.extract_compact(id_token.encode()).headers()
    except (JoseError, ValueError) as exc:
        raise SignInRefused("the identity provider's ID token is not a signed JWT") from exc
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


def key_ids(keys: KeySet) -> set[str]:
    return {k.kid for k in keys.keys if k.kid}


def _time(claims: Mapping[str, Any], name: str) -> dt.datetime | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SignInRefused(f"the ID token's {name} is not a number")
    return dt.datetime.fromtimestamp(value, dt.UTC)


def _check_audience(claims: Mapping[str, Any], client_id: str) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise SignInRefused(
            f"the ID token was issued for another application (aud {aud!r}, not {client_id!r})"
        )
    # Core 3.1.3.7 items 4 and 5: with several audiences, azp must be us.
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise SignInRefused(f"the ID token's authorized party is {azp!r}, not {client_id!r}")


def _check_times(claims: Mapping[str, Any], now: dt.datetime, leeway: dt.timedelta) -> None:
    exp, iat, nbf = _time(claims, "exp"), _time(claims, "iat"), _time(claims, "nbf")
    if exp is None or iat is None:
        raise SignInRefused("the ID token lacks exp or iat")
    if exp <= now - leeway:
        raise SignInRefused(f"the ID token expired at {exp:%Y-%m-%d %H:%M:%S} UTC: sign in again")
    if iat > now + leeway or (nbf is not None and nbf > now + leeway):
        raise SignInRefused("the ID token is not valid yet: the provider's clock and ours disagree")


def verify_id_token(
    id_token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: dt.datetime,
    leeway: dt.timedelta,
) -> IdToken:
    """Verify signature, ``iss``, ``aud``/``azp``, ``exp``/``iat``/``nbf`` (with ``leeway``) and
    ``nonce``; return the identity. ``keys`` must already hold the token's ``kid``."""
    kid = token_key_id(id_token)
    if kid is not None and kid not in key_ids(keys):
        raise SignInRefused(f"the ID token is signed with key {kid!r}, which the provider does not publish")
    try:
        token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError) as exc:
        raise SignInRefused("the ID token's signature does not verify with the provider's keys") from exc
    claims: Mapping[str, Any] = token.claims
    if claims.get("iss") != issuer:
        raise SignInRefused(f"the ID token comes from issuer {claims.get('iss')!r}, not {issuer!r}")
    _check_audience(claims, client_id)
    _check_times(claims, now, leeway)
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not secrets.compare_digest(token_nonce, nonce):
        raise SignInRefused("the ID token's nonce does not match this sign-in attempt")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise SignInRefused("the ID token has no subject")
    email = claims.get("email")
    return IdToken(subject, email if isinstance(email, str) else None, claims)


def decode_json(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise SignInRefused(f"the identity provider's {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise SignInRefused(f"the identity provider's {what} is not a JSON object")
    return value

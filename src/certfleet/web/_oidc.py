"""Single sign-on with one OpenID Connect provider: discovery, the provider's keys, the
authorization request, the code exchange, and the mapping from groups to a principal.

The flow is the authorization code flow with PKCE S256 (OpenID Connect Core 3.1, RFC 7636).
``state``, ``nonce`` and the PKCE verifier are fresh for every attempt and kept server-side
(:class:`SingleSignOn` stores them with the sessions), bound to the browser that started the
attempt and deleted when the callback uses them: a replayed callback finds nothing.

The discovery document (``/.well-known/openid-configuration``) and the key set are fetched
with httpx and reused for ``discovery_cache_seconds``; an ID token signed with a key id the
cached set lacks triggers one refetch (the provider rotated its keys), never more."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from certfleet.access import Principal, Scope
from certfleet.clock import Clock
from certfleet.config._oidc import GroupGrant, OidcSettings
from certfleet.web._oidc_tokens import (
    IdToken,
    ProviderUnavailable,
    SignInRefused,
    decode_json,
    key_ids,
    token_key_id,
    verify_id_token,
)

__all__ = ["OidcProvider", "ProviderMetadata", "map_groups"]

_TIMEOUT = httpx.Timeout(10.0)
_SCOPE_RANK = {Scope.READ: 0, Scope.ISSUE: 1, Scope.REVOKE: 1, Scope.ADMIN: 2}


@dataclass(frozen=True)
class ProviderMetadata:
    """The endpoints certfleet uses from the discovery document (OpenID Connect Discovery 3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def _groups(claims: Mapping[str, Any], claim: str) -> list[str]:
    value = claims.get(claim, [])
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [g for g in value if isinstance(g, str)]
    return []


def map_groups(identity: IdToken, grants: Mapping[str, GroupGrant], claim: str) -> Principal:
    """The principal the user's groups map to. Deny by default: no mapped group, no access.
    An admin group wins; otherwise all mapped groups must name one team (a session carries
    one team), and the strongest role among them applies."""
    mapped = [(g, grants[g]) for g in _groups(identity.claims, claim) if g in grants]
    if not mapped:
        raise SignInRefused(
            f"{identity.email or identity.subject} is in no group that certfleet maps to a team "
            "or role: ask an administrator for access"
        )
    scopes = [Scope(grant.scope) for _, grant in mapped]
    if Scope.ADMIN in scopes:
        return Principal(identity.actor, None, Scope.ADMIN)
    teams = sorted({grant.team for _, grant in mapped if grant.team})
    if len(teams) != 1:
        raise SignInRefused(f"your groups map to several teams ({', '.join(teams)}); a session has one team")
    # The strongest role; issue and revoke are separate rights of equal rank: the first
    # mapped group's wins a tie (map one group per role to avoid the question).
    best = max(scopes, key=lambda s: _SCOPE_RANK[s])
    return Principal(identity.actor, teams[0], best)


class OidcProvider:
    """One configured provider; thread-safe (pages call it from the thread pool)."""

    def __init__(
        self, settings: OidcSettings, clock: Clock, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._client = httpx.Client(timeout=_TIMEOUT, transport=transport, follow_redirects=False)
        self._lock = threading.Lock()
        self._metadata: tuple[ProviderMetadata, dt.datetime] | None = None
        self._keys: tuple[KeySet, dt.datetime] | None = None

    @property
    def _ttl(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.settings.discovery_cache_seconds)

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"the identity provider is unreachable ({what}): {type(exc).__name__}"
            ) from exc
        if response.status_code != 200:
            raise ProviderUnavailable(f"the identity provider answered {response.status_code} for its {what}")
        return decode_json(response.content, what)

    def metadata(self) -> ProviderMetadata:
        now = self._clock.now()
        with self._lock:
            cached = self._metadata
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        issuer = self.settings.issuer.rstrip("/")
        document = self._get_json(f"{issuer}/.well-known/openid-configuration", "discovery document")
        # Discovery 4.3: the document's issuer must be exactly the configured one.
        if document.get("issuer") != self.settings.issuer:
            raise SignInRefused(
                f"the discovery document names issuer {document.get('issuer')!r}, "
                f"not {self.settings.issuer!r}"
            )
        try:
            metadata = ProviderMetadata(
                self.settings.issuer,
                str(document["authorization_endpoint"]),
                str(document["token_endpoint"]),
                str(document["jwks_uri"]),
            )
        except KeyError as exc:
            raise SignInRefused(f"the discovery document lacks {exc.args[0]}") from exc
        with self._lock:
            self._metadata = (metadata, now)
        return metadata

    def keys(self, *, refresh: bool = False) -> KeySet:
        now = self._clock.now()
        with self._lock:
            cached = self._keys
        if cached is not None and not refresh and now - cached[1] < self._ttl:
            return cached[0]
        document = self._get_json(self.metadata().jwks_uri, "key set")
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise SignInRefused("the identity provider's key set cannot be read") from exc
        with self._lock:
            self._keys = (keys, now)
        return keys

    def authorization_url(self, redirect_uri: str, state: str, nonce: str, challenge: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.settings.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        endpoint = self.metadata().authorization_endpoint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def redeem(self, code: str, verifier: str, redirect_uri: str, nonce: str) -> IdToken:
        """Exchange ``code`` (with the PKCE ``verifier``, client_secret_basic) and verify the
        ID token that comes back."""
        if not verifier:
            raise SignInRefused("this sign-in attempt has no PKCE verifier")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        # RFC 6749 2.3.1: client_secret_basic form-encodes id and secret before Base64.
        auth = httpx.BasicAuth(
            quote_plus(self.settings.client_id), quote_plus(self.settings.read_client_secret())
        )
        try:
            response = self._client.post(self.metadata().token_endpoint, data=form, auth=auth)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"the identity provider's token endpoint is unreachable: {type(exc).__name__}"
            ) from exc
        answer = decode_json(response.content, "token response")
        if response.status_code != 200:
            error = answer.get("error_description") or answer.get("error") or response.status_code
            raise SignInRefused(f"the identity provider refused the code: {error}")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("the identity provider's token response has no ID token")
        keys = self.keys()
        kid = token_key_id(id_token)
        if kid is not None and kid not in key_ids(keys):
            keys = self.keys(refresh=True)  # rotated keys: refetch once
        return verify_id_token(
            id_token,
            keys,
            issuer=self.settings.issuer,
            client_id=self.settings.client_id,
            nonce=nonce,
            now=self._clock.now(),
            leeway=dt.timedelta(seconds=self.settings.leeway_seconds),
        )

    def close(self) -> None:
        self._client.close()

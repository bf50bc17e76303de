"""One single sign-on attempt, from the redirect to the provider to the session it opens.

An attempt's ``state``, ``nonce`` and PKCE verifier live in the database (only SHA-256 of
``state``), for ten minutes, bound to the browser by SHA-256 of a random cookie; the callback
deletes the attempt before anything else, so a replayed callback URL (or one opened in
another browser) is refused."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from fastapi import Request

from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.web._oidc import OidcProvider, map_groups
from certfleet.web._oidc_tokens import SignInRefused, pkce_challenge, pkce_verifier
from certfleet.web._ports import SessionStore
from certfleet.web._sessions import Sessions

__all__ = ["ATTEMPT_COOKIE", "ATTEMPT_LIFETIME", "CALLBACK_PATH", "SingleSignOn"]

ATTEMPT_COOKIE = "__Host-certfleet-oidc"
# Long enough to type a password and answer a second factor; short enough that a leaked
# authorization URL is soon worthless.
ATTEMPT_LIFETIME = dt.timedelta(minutes=10)
CALLBACK_PATH = "/login/oidc/callback"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SingleSignOn:
    """The two halves of one sign-in attempt, over the session store."""

    def __init__(self, provider: OidcProvider, store: SessionStore, sessions: Sessions, clock: Clock) -> None:
        self.provider = provider
        self._store = store
        self._sessions = sessions
        self._clock = clock

    @property
    def provider_name(self) -> str:
        return self.provider.settings.provider_name

    def redirect_uri(self, request: Request) -> str:
        configured = self.provider.settings.redirect_uri
        return configured or f"{request.url.scheme}://{request.url.netloc}{CALLBACK_PATH}"

    def begin(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """Record a fresh attempt; return the provider URL to send the browser to, and the
        browser-binding cookie's value."""
        state, nonce, browser = (secrets.token_urlsafe(32) for _ in range(3))
        verifier = pkce_verifier()
        url = self.provider.authorization_url(redirect_uri, state, nonce, pkce_challenge(verifier))
        now = self._clock.now()
        with self._store.transaction() as tx:
            tx.sessions.add_login(
                _sha256(state), _sha256(browser), nonce, verifier, next_path, now + ATTEMPT_LIFETIME
            )
        return url, browser

    def finish(self, state: str, code: str, browser: str | None, redirect_uri: str) -> tuple[str, str, str]:
        """Use up the attempt named by ``state``, redeem ``code`` and open a session; return the
        session secret, the page to go to, and who signed in."""
        if not state or len(state) > 200:
            raise SignInRefused("the provider's answer has no valid state: start again from the sign-in page")
        with self._store.transaction() as tx:
            login = tx.sessions.take_login(_sha256(state), self._clock.now())
        if login is None:
            raise SignInRefused(
                "this sign-in answer was already used or has expired (state unknown): "
                "start again from the sign-in page"
            )
        if not browser or not hmac.compare_digest(_sha256(browser), login.browser_sha256):
            raise SignInRefused(
                "this sign-in was started in another browser: start again from the sign-in page"
            )
        if not code:
            raise SignInRefused("the provider's answer has no authorization code")
        identity = self.provider.redeem(code, login.code_verifier, redirect_uri, login.nonce)
        settings = self.provider.settings
        try:
            principal = map_groups(identity, settings.groups, settings.groups_claim)
        except SignInRefused as exc:
            # A verified person the mapping turns away: the security team wants to see it.
            with self._store.transaction() as tx:
                AuditLog(tx.audit, self._clock).record(
                    identity.actor, "web.sign_in_refused", identity.actor, {"reason": exc.detail}
                )
            raise
        secret = self._sessions.sign_in_sso(
            principal, {"subject": identity.subject, "issuer": settings.issuer}
        )
        return secret, login.next_path, principal.name

    def abandon(self, state: str) -> None:
        """The provider answered with an error: use the attempt up all the same."""
        with self._store.transaction() as tx:
            tx.sessions.take_login(_sha256(state), self._clock.now())

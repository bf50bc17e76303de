"""Signing in with an API token, browser sessions, and CSRF tokens.

A session cookie holds 256 random bits; the database keeps only their SHA-256, so a copy of
the sessions table opens no session. The cookie is ``__Host-`` prefixed, ``Secure``,
``HttpOnly`` and ``SameSite=Strict`` (RFC 6265bis sections 4.1.3 and 5.4.7). Each
state-changing form carries a synchronizer token derived from the session's secret (HMAC), so
it is tied to that one session and needs no storage. What a session may see and do is the
token's team and scope, read afresh on every request: revoking the token ends its sessions.
A session opened through single sign-on has no token: it stores the team and scope the user's
groups mapped to at sign-in, and every page narrows by them exactly as for a team token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from certfleet.access import Principal, Scope
from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.errors import Forbidden
from certfleet.services import TokenService
from certfleet.web._ports import SessionStore

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_IDLE",
    "SESSION_LIFETIME",
    "Sessions",
    "User",
    "check_csrf",
]

SESSION_COOKIE = "__Host-certfleet-session"
LOGIN_COOKIE = "__Host-certfleet-signin"
# An unattended browser is signed out after half an hour; any session after a working day.
SESSION_IDLE = dt.timedelta(minutes=30)
SESSION_LIFETIME = dt.timedelta(hours=12)
# last_seen is written at most once a minute, so reading pages takes no write lock.
_TOUCH_EVERY = dt.timedelta(minutes=1)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    return hmac.new(secret.encode(), b"certfleet csrf v1", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class User:
    """The signed-in principal and its session's CSRF token."""

    principal: Principal
    csrf: str
    token_id: str | None  # None: signed in through single sign-on

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    @property
    def team(self) -> str | None:
        """The team every query is narrowed to; None for an admin, who sees all."""
        return None if self.principal.is_admin else self.principal.team


def check_csrf(user: User, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(submitted, user.csrf):
        raise Forbidden("the form's CSRF token is missing or belongs to another session: reload the page")


class Sessions:
    def __init__(self, store: SessionStore, tokens: TokenService, clock: Clock) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock

    def sign_in(self, token: str) -> str:
        """Check the API token and open a session; return the cookie's secret."""
        principal = self._tokens.authenticate(token.strip())
        token_id = principal.name.removeprefix("token:")
        secret = secrets.token_urlsafe(32)
        now = self._clock.now()
        with self._store.transaction() as tx:
            tx.sessions.purge(now - SESSION_IDLE, now)
            tx.sessions.add(_sha256(secret), token_id, now, now + SESSION_LIFETIME)
            AuditLog(tx.audit, self._clock).record(
                principal.name,
                "web.signed_in",
                token_id,
                {"team": principal.team, "scope": principal.scope.value},
            )
        return secret

    def sign_in_sso(self, principal: Principal, details: dict[str, object]) -> str:
        """Open a session for a single sign-on ``principal`` (its team and scope as mapped from
        the user's groups); return the cookie's secret."""
        secret = secrets.token_urlsafe(32)
        now = self._clock.now()
        with self._store.transaction() as tx:
            tx.sessions.purge(now - SESSION_IDLE, now)
            tx.sessions.add(
                _sha256(secret),
                None,
                now,
                now + SESSION_LIFETIME,
                principal=(principal.name, principal.team, principal.scope.value),
            )
            AuditLog(tx.audit, self._clock).record(
                principal.name,
                "web.signed_in",
                principal.name,
                {"method": "oidc", "team": principal.team, "scope": principal.scope.value, **details},
            )
        return secret

    def user(self, secret: str | None) -> User | None:
        """The session's user, or None when the cookie is unknown, expired or idle too long, or
        its token was revoked."""
        if not secret or len(secret) > 100:
            return None
        key = _sha256(secret)
        now = self._clock.now()
        with self._store.transaction(read_only=True) as tx:
            session = tx.sessions.get(key)
        if (
            session is None
            or session.expires_at <= now
            or session.last_seen_at <= now - SESSION_IDLE
            or (session.token is not None and session.token.revoked_at is not None)
        ):
            return None
        if now - session.last_seen_at >= _TOUCH_EVERY:
            with self._store.transaction() as tx:
                tx.sessions.touch(key, now)
        token = session.token
        if token is None:
            if session.principal_name is None or session.scope is None:
                return None
            principal = Principal(session.principal_name, session.team, Scope(session.scope))
            return User(principal, csrf_token(secret), None)
        principal = Principal(f"token:{token.id}", token.team, token.scope, token.allow_names)
        return User(principal, csrf_token(secret), token.id)

    def sign_out(self, secret: str) -> None:
        with self._store.transaction() as tx:
            tx.sessions.delete(_sha256(secret))

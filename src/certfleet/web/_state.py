"""What every dashboard request reaches: the platform, the read queries, the sessions, and the
signed-in user (or a redirect to the sign-in page)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

from fastapi import Request

from certfleet.audit import ChainVerdict
from certfleet.web._compliance import ComplianceCache
from certfleet.web._oidc import OidcProvider
from certfleet.web._oidc_flow import SingleSignOn
from certfleet.web._ports import WebPlatform
from certfleet.web._render import SignInRequired
from certfleet.web._sessions import SESSION_COOKIE, Sessions, User

__all__ = ["AUDIT_VERDICT_TTL_SECONDS", "Dashboard", "current_user", "dashboard"]

# Verifying the chain reads every entry; a cached verdict is shown for this long unless the
# reader asks for a new check.
AUDIT_VERDICT_TTL_SECONDS = 300.0


@dataclass(frozen=True)
class Verified:
    verdict: ChainVerdict
    at: dt.datetime
    monotonic: float


class Dashboard:
    def __init__(self, platform: WebPlatform) -> None:
        self.platform = platform
        self.queries = platform.web_queries
        self.sessions = Sessions(platform.web_sessions, platform.tokens, platform.clock)
        oidc = platform.settings.web.oidc  # [web.oidc]: single sign-on, when configured
        self.sso = (
            SingleSignOn(
                OidcProvider(oidc, platform.clock), platform.web_sessions, self.sessions, platform.clock
            )
            if oidc
            else None
        )
        self.compliance = ComplianceCache(platform)
        self._lock = threading.Lock()
        self._verified: Verified | None = None

    def audit_verdict(self, *, fresh: bool) -> Verified:
        with self._lock:
            cached = self._verified
        if cached is None or fresh or time.monotonic() - cached.monotonic > AUDIT_VERDICT_TTL_SECONDS:
            cached = Verified(self.platform.audit.verify(), self.platform.clock.now(), time.monotonic())
            with self._lock:
                self._verified = cached
        return cached


def dashboard(request: Request) -> Dashboard:
    state: Dashboard = request.app.state.dashboard
    return state


def current_user(request: Request) -> User:
    """The signed-in user; raises SignInRequired (a redirect) without a live session."""
    user = dashboard(request).sessions.user(request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise SignInRequired()
    request.state.user = user
    return user

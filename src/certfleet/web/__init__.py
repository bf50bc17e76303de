"""The web dashboard, served at ``/`` by the HTTPS listener beside the REST API.

Server-rendered pages (Jinja2 templates shipped in the package), a stylesheet and one small
script; no front-end build step and nothing fetched from a CDN. Users sign in with an API
token, or through the configured OpenID Connect provider, and then hold a session cookie;
every page shows and allows exactly what that token's (or the user's mapped groups') team and
scope allow in the REST API.
"""

from __future__ import annotations

from fastapi import FastAPI

from certfleet.web import (
    _audit_pages,
    _auth_pages,
    _certificate,
    _crypto_pages,
    _discovery_pages,
    _inventory,
    _lifecycle_pages,
    _oidc_pages,
    _overview,
    _spiffe_pages,
    _static,
    _trust_pages,
)
from certfleet.web._ports import WebPlatform
from certfleet.web._sessions import LOGIN_COOKIE, SESSION_COOKIE
from certfleet.web._state import Dashboard

__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE", "WebPlatform", "install_dashboard"]


def install_dashboard(app: FastAPI, platform: WebPlatform) -> None:
    """Add the dashboard's routes to ``app`` (the HTTPS API app)."""
    app.state.dashboard = Dashboard(platform)
    for module in (
        _auth_pages,
        _oidc_pages,  # single sign-on with OpenID Connect (issue 18)
        _overview,
        _inventory,
        _certificate,
        _discovery_pages,
        _lifecycle_pages,
        _audit_pages,
        _spiffe_pages,  # SPIFFE entries and their live SVIDs (issue 15)
        _crypto_pages,  # cryptographic exposure by team and algorithm (issue 17)
        _trust_pages,  # trust stores and CA consolidation (issue 18)
        _static,
    ):
        app.include_router(module.router)

"""Sign in with an API token (or, when configured, start single sign-on), and sign out."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from certfleet.errors import Unauthenticated
from certfleet.web._forms import read_form
from certfleet.web._render import HtmlRoute, render
from certfleet.web._sessions import LOGIN_COOKIE, SESSION_COOKIE, SESSION_LIFETIME, check_csrf
from certfleet.web._state import current_user, dashboard

__all__ = ["local_path", "router", "set_session_cookie"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


def local_path(target: str | None) -> str:
    """Only a path on this site: ``next`` must never send a user elsewhere (open redirect)."""
    # Browsers drop tabs and newlines from URLs ("/\t/evil.test" would become "//evil.test").
    if any(c < " " or c == "\x7f" for c in target or ""):
        return "/"
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


def set_session_cookie(response: Response, secret: str) -> None:
    _set_cookie(response, SESSION_COOKIE, secret, int(SESSION_LIFETIME.total_seconds()))


def _login_form(request: Request, error: str | None = None, status: int = 200) -> Response:
    # Login CSRF (signing a victim in as the attacker) is stopped by a double-submit value:
    # a fresh random cookie that the form must echo.
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {
            "user": None,
            "nonce": nonce,
            "next": local_path(request.query_params.get("next")),
            "error": error,
            "sso_name": sso.provider_name if (sso := dashboard(request).sso) else None,
        },
        status,
    )
    _set_cookie(response, LOGIN_COOKIE, nonce, 600)
    return response


@router.get("/login")
def login_page(request: Request) -> Response:
    return _login_form(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, form.get("nonce", "")):
        return _login_form(request, "The sign-in form expired: please try again.", 403)
    try:
        secret = await run_in_threadpool(dashboard(request).sessions.sign_in, form.get("token", ""))
    except Unauthenticated:
        return _login_form(request, "That API token is not valid (unknown, revoked or mistyped).", 401)
    response = RedirectResponse(local_path(form.get("next")), status_code=303)
    set_session_cookie(response, secret)
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    user = await run_in_threadpool(current_user, request)
    check_csrf(user, form.get("csrf_token"))
    await run_in_threadpool(dashboard(request).sessions.sign_out, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response

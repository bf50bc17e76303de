"""Sign in with the configured OpenID Connect provider: ``/login/oidc`` starts an attempt and
redirects to the provider, ``/login/oidc/callback`` finishes it (see ``_oidc_flow``).

The attempt's browser-binding cookie is ``SameSite=Lax``: it must come back on the provider's
cross-site redirect. Every refusal is a 403 page saying why, and opens no session."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from certfleet.errors import NotFound
from certfleet.web._auth_pages import local_path, set_session_cookie
from certfleet.web._oidc_flow import ATTEMPT_COOKIE, ATTEMPT_LIFETIME, CALLBACK_PATH, SingleSignOn
from certfleet.web._oidc_tokens import SignInRefused
from certfleet.web._render import HtmlRoute, render
from certfleet.web._state import dashboard

__all__ = ["router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


def _sso(request: Request) -> SingleSignOn:
    sso = dashboard(request).sso
    if sso is None:
        raise NotFound("single sign-on is not configured on this server")
    return sso


def _clear_attempt(response: Response) -> None:
    response.delete_cookie(ATTEMPT_COOKIE, path="/", secure=True, httponly=True, samesite="lax")


@router.get("/login/oidc")
async def start(request: Request) -> Response:
    sso = _sso(request)
    next_path = local_path(request.query_params.get("next"))
    url, browser = await run_in_threadpool(sso.begin, sso.redirect_uri(request), next_path)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        ATTEMPT_COOKIE,
        browser,
        max_age=int(ATTEMPT_LIFETIME.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(CALLBACK_PATH)
async def callback(request: Request) -> Response:
    sso = _sso(request)
    params = request.query_params
    if params.get("error"):
        # RFC 6749 4.1.2.1: the provider refused (the user cancelled, or is not allowed).
        # The attempt is used up all the same.
        await run_in_threadpool(sso.abandon, params.get("state", ""))
        detail = params.get("error_description") or params["error"]
        raise SignInRefused(f"the identity provider did not sign you in: {detail[:300]}")
    secret, next_path, name = await run_in_threadpool(
        sso.finish,
        params.get("state", ""),
        params.get("code", ""),
        request.cookies.get(ATTEMPT_COOKIE),
        sso.redirect_uri(request),
    )
    response = render(request, "signed_in.html", {"user": None, "next": next_path, "name": name})
    set_session_cookie(response, secret)
    _clear_attempt(response)
    return response

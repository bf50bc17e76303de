"""Rendering: the Jinja2 environment (templates ship inside the package), the security headers
every dashboard response carries, and the route class that turns errors into HTML pages."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Coroutine, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape

from certfleet.clock import iso
from certfleet.errors import CertfleetError

__all__ = ["HtmlRoute", "SignInRequired", "render", "url_with"]

_log = logging.getLogger("certfleet.web")

# Everything the pages load comes from this origin; no inline script or style runs, so an
# injected string that escaped autoescaping still could not execute (CSP Level 3).
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class SignInRequired(Exception):
    """No valid session: the route class answers with a redirect to the sign-in page."""


def _date(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d") if value else ""


def _datetime(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _days_left(value: dt.datetime, now: dt.datetime) -> str:
    seconds = (value - now).total_seconds()
    days = int(abs(seconds) // 86400)
    if seconds < 0:
        return f"expired {days} d ago" if days else "expired today"
    return f"in {days} d" if days else "today"


_env = Environment(
    loader=PackageLoader("certfleet.web", "templates"),
    autoescape=select_autoescape(["html", "svg"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["date"] = _date
_env.filters["datetime"] = _datetime
_env.filters["iso"] = iso
_env.filters["urlquote"] = lambda v: quote(str(v), safe="")
_env.globals["days_left"] = _days_left


def url_with(path: str, params: Mapping[str, object]) -> str:
    """``path?query`` with the empty parameters left out."""
    query = urlencode([(k, str(v)) for k, v in params.items() if v not in (None, "")])
    return f"{path}?{query}" if query else path


_env.globals["url_with"] = url_with


def secure(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # Pages show one team's certificates: no shared or browser cache may keep them.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def render(request: Request, template: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
    page = _env.get_template(template).render({"request": request, "path": request.url.path, **context})
    return HTMLResponse(page, status_code=status)


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    user = getattr(request.state, "user", None)
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return render(
        request, "error.html", {"user": user, "status": status, "title": title, "detail": detail}, status
    )


class HtmlRoute(APIRoute):
    """Dashboard routes answer with HTML: a sign-in redirect, an error page with the precise
    reason (never a traceback), and the security headers on every response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except SignInRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(url_with("/login", {"next": target}), status_code=303)
            except CertfleetError as exc:
                response = error_page(request, exc.http_status, exc.detail)
            except Exception as exc:  # noqa: BLE001 - the outermost request handler: a page, not a trace
                _log.error("dashboard error on %s: %s: %s", request.url.path, type(exc).__name__, exc)
                response = error_page(request, 500, "the server failed to handle this request")
            return secure(response)

        return handler

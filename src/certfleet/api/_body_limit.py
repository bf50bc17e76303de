"""A request-body limit in front of every app, enforced before anything reads the body.

FastAPI reads and parses a whole body before a route's dependencies (authentication among
them) run, so without a bound one unauthenticated, chunked, multi-gigabyte POST fills the
server's memory. This is a plain ASGI wrapper (not ``BaseHTTPMiddleware``, which buffers and
runs the app in another task): a declared ``Content-Length`` over the limit is answered 413
at once, without reading a byte; a chunked body is counted as it arrives and the request is
abandoned the moment the count passes the limit. The 413 (RFC 9110 section 15.5.14) closes
the connection, so the rest of the body is never read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CSR_BODY_BYTES", "DEFAULT_BODY_BYTES", "IMPORT_BODY_FACTOR", "BodyLimit", "BodyLimits"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_BODY_BYTES = 1024 * 1024
"""``[server] max_body_bytes``: large enough for any JSON request of the API or a dashboard
form, small enough that a few hundred concurrent requests cannot exhaust memory."""

CSR_BODY_BYTES = 64 * 1024
"""Routes whose body is a CSR (or an OCSP request) and little else: a 16,384-bit RSA CSR is
under 6 KiB of PEM, so 64 KiB leaves room while keeping each request cheap."""

_CSR_ROUTES: Mapping[tuple[str, str], int] = {
    ("POST", "/api/v1/certificates"): CSR_BODY_BYTES,
    ("POST", "/api/v1/agent/enroll"): CSR_BODY_BYTES,
    ("POST", "/api/v1/agent/identity"): CSR_BODY_BYTES,
    ("POST", "/api/v1/agent/certificates"): CSR_BODY_BYTES,
    ("POST", "/ocsp"): CSR_BODY_BYTES,
}

IMPORT_BODY_FACTOR = 8
"""``POST /api/v1/inventory/import`` carries whole PEM bundles (base64 in JSON), so it may
take eight times ``default_bytes``: 8 MiB with the default, about 4,000 certificates in one
request (``certfleet inventory import`` sends a larger import in several). It is a multiple,
not a figure, so an operator who lowers ``max_body_bytes`` lowers it too."""

_RAISED_ROUTES: Mapping[tuple[str, str], int] = {("POST", "/api/v1/inventory/import"): IMPORT_BODY_FACTOR}


@dataclass(frozen=True)
class BodyLimits:
    """``default_bytes`` for every request, lowered per ``(method, path)`` in ``per_route``,
    or raised to a multiple of itself in ``factors`` (only the bulk import: every other body
    is a small JSON document or a CSR)."""

    default_bytes: int = DEFAULT_BODY_BYTES
    per_route: Mapping[tuple[str, str], int] = field(default_factory=lambda: dict(_CSR_ROUTES))
    factors: Mapping[tuple[str, str], int] = field(default_factory=lambda: dict(_RAISED_ROUTES))

    def __post_init__(self) -> None:
        if self.default_bytes < 1:
            raise ValueError("a body limit must be at least 1 byte")

    def for_request(self, method: str, path: str) -> int:
        key = (method.upper(), path.rstrip("/") or "/")
        route = self.per_route.get(key)
        if route is not None:
            return min(route, self.default_bytes)
        return self.default_bytes * self.factors.get(key, 1)


class _BodyTooLarge(Exception):
    """Raised from ``receive`` into the app once the count passes the limit."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _send_413(send: Send, limit: int, method: str, path: str) -> None:
    detail = f"request body exceeds the limit of {limit} bytes for {method} {path}"
    body = json.dumps(
        {"type": "about:blank", "title": "Content Too Large", "status": 413, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is never read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BodyLimit:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp, limits: BodyLimits | None = None) -> None:
        self.app = app
        self.limits = limits or BodyLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope.get("method", "GET"), scope.get("path", "/")
        limit = self.limits.for_request(method, path)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, limit, method, path)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app makes of a body it never got whole is not sent
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # The app (or the framework's error handler) may turn _BodyTooLarge into its own
            # error and re-raise it: once the limit is passed that is no error of the app.
            if not exceeded or started:
                raise
        if exceeded:
            if started:  # a response already under way cannot become a 413: cut it
                raise _BodyTooLarge(f"request body passed {limit} bytes after the response started")
            await _send_413(send, limit, method, path)

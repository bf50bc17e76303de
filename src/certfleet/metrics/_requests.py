"""ACME and OCSP request counters and latency histograms, taken by an ASGI middleware on the
HTTPS and plain-HTTP apps (the protocol code stays untouched)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from certfleet.metrics._counters import RequestMetrics

__all__ = ["RequestMetrics", "RequestMetricsMiddleware", "classify"]

# RFC 8555 resources by their first path segment below /acme; anything else is "other", so
# a scanner probing random paths cannot blow up the label set.
_ACME_ENDPOINTS = frozenset(
    {
        "directory",
        "new-nonce",
        "new-account",
        "new-order",
        "acct",
        "order",
        "authz",
        "chall",
        "cert",
        "revoke-cert",
        "key-change",
        "renewal-info",
        "terms",
    }
)


def classify(path: str) -> tuple[str, str] | None:
    """(protocol, endpoint) for an ACME or OCSP request path, else None."""
    if path == "/ocsp" or path.startswith("/ocsp/"):
        return "ocsp", "ocsp"
    if not path.startswith("/acme/"):
        return None
    parts = path.split("/")
    endpoint = parts[2] if parts[2] in _ACME_ENDPOINTS else "other"
    if endpoint == "order" and parts[-1] == "finalize":
        endpoint = "finalize"
    elif endpoint == "acct" and parts[-1] == "orders":
        endpoint = "orders"
    return "acme", endpoint


class RequestMetricsMiddleware:
    """Pure ASGI (no response buffering, streaming untouched): times ACME and OCSP requests
    from the first byte received to the response start, and counts them by status."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = classify(scope.get("path", "")) if scope["type"] == "http" else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started is a server error

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            protocol, endpoint = kind
            self.metrics.observe(
                protocol, endpoint, scope.get("method", "GET"), status, time.perf_counter() - started
            )

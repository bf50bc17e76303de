"""ACME and OCSP request counters and latency histograms, taken by an ASGI middleware on the
HTTPS and plain-HTTP apps (the protocol code stays untouched)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestMetrics", "RequestMetricsMiddleware", "classify"]

# OCSP answers come from pre-signed responses (milliseconds); ACME finalize signs (tens of
# milliseconds); validation-heavy calls can take seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
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


class RequestMetrics(Collector):
    """The counters and histograms, kept outside any global registry (one set per platform)."""

    def __init__(self) -> None:
        self.acme_requests = Counter(
            "certfleet_acme_requests",
            "ACME requests by endpoint, method and HTTP status",
            ["endpoint", "method", "code"],
            registry=None,
        )
        self.acme_latency = Histogram(
            "certfleet_acme_request_duration_seconds",
            "Time to answer an ACME request",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=None,
        )
        self.ocsp_requests = Counter(
            "certfleet_ocsp_requests",
            "OCSP requests by HTTP method and status (RFC 6960 errors are HTTP 200 too)",
            ["method", "code"],
            registry=None,
        )
        self.ocsp_latency = Histogram(
            "certfleet_ocsp_request_duration_seconds",
            "Time to answer an OCSP request",
            ["method"],
            buckets=_BUCKETS,
            registry=None,
        )

    def observe(self, protocol: str, endpoint: str, method: str, code: int, seconds: float) -> None:
        if protocol == "acme":
            self.acme_requests.labels(endpoint, method, str(code)).inc()
            self.acme_latency.labels(endpoint).observe(seconds)
        else:
            self.ocsp_requests.labels(method, str(code)).inc()
            self.ocsp_latency.labels(method).observe(seconds)

    def collect(self) -> Iterable[Metric]:
        for metric in (self.acme_requests, self.acme_latency, self.ocsp_requests, self.ocsp_latency):
            yield from metric.collect()


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

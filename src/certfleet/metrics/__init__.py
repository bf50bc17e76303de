"""Prometheus metrics: fleet gauges and operation counters computed from the database at
scrape time, and ACME and OCSP request counters and latencies from an ASGI middleware.
Served at ``/metrics`` on the HTTPS listener (token scope) or on a listener of its own, as
``[metrics]`` in config.toml says. The composition root (certfleet.app) builds one
:class:`PlatformMetrics` per platform; nothing here keeps a global registry."""

from __future__ import annotations

from fastapi import FastAPI

from certfleet.metrics._counters import count_across_processes
from certfleet.metrics._endpoint import router
from certfleet.metrics._exposition import PlatformMetrics
from certfleet.metrics._listener import metrics_listener
from certfleet.metrics._ports import MetricsHost, MetricsQueries
from certfleet.metrics._requests import RequestMetricsMiddleware
from certfleet.metrics._settings import MetricsSettings

__all__ = [
    "MetricsHost",
    "MetricsQueries",
    "MetricsSettings",
    "PlatformMetrics",
    "count_across_processes",
    "install_metrics",
    "instrument_requests",
    "metrics_listener",
]


def instrument_requests(app: FastAPI, metrics: PlatformMetrics) -> None:
    """Count and time the ACME and OCSP requests ``app`` serves."""
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics.requests)


def install_metrics(app: FastAPI, metrics: PlatformMetrics) -> None:
    """``/metrics`` (token-protected) on the HTTPS app, and its request instrumentation.
    ``app.state.platform`` must provide :class:`MetricsHost`."""
    instrument_requests(app, metrics)
    app.include_router(router)

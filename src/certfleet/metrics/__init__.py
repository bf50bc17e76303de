"""Prometheus metrics: fleet gauges and operation counters computed from the database at
scrape time, and ACME and OCSP request counters and latencies from an ASGI middleware.
Served at ``/metrics`` on the HTTPS listener (token scope) or on a listener of its own, as
``[metrics]`` in config.toml says."""

from __future__ import annotations

from fastapi import FastAPI

from certfleet.app import Platform
from certfleet.metrics._endpoint import router
from certfleet.metrics._exposition import PlatformMetrics, metrics_for
from certfleet.metrics._listener import metrics_listener
from certfleet.metrics._requests import RequestMetricsMiddleware
from certfleet.metrics._settings import MetricsSettings

__all__ = [
    "MetricsSettings",
    "PlatformMetrics",
    "install_metrics",
    "instrument_requests",
    "metrics_for",
    "metrics_listener",
]


def instrument_requests(app: FastAPI, platform: Platform) -> None:
    """Count and time the ACME and OCSP requests ``app`` serves."""
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics_for(platform).requests)


def install_metrics(app: FastAPI, platform: Platform) -> None:
    """``/metrics`` (token-protected) on the HTTPS app, and its request instrumentation."""
    instrument_requests(app, platform)
    app.include_router(router)

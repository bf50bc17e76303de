"""Prometheus metrics: fleet gauges and operation counters computed from the database at
scrape time, and ACME and OCSP request counters and latencies (the ACME app and the
plain-HTTP listener record their own requests: :func:`acme_endpoint` names the label).
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
from certfleet.metrics._requests import acme_endpoint
from certfleet.metrics._settings import MetricsSettings

__all__ = [
    "MetricsHost",
    "MetricsQueries",
    "MetricsSettings",
    "PlatformMetrics",
    "acme_endpoint",
    "count_across_processes",
    "install_metrics",
    "metrics_listener",
]


def install_metrics(app: FastAPI) -> None:
    """``/metrics`` (token-protected) on the HTTPS app. ``app.state.platform`` must provide
    :class:`MetricsHost`."""
    app.include_router(router)

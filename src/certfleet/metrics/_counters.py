"""The ACME and OCSP request counters and latency histograms (the middleware that feeds them
is in :mod:`._requests`); free of any web framework, so the composition root can build them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import Counter, Histogram, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = ["RequestMetrics", "count_across_processes"]

# prometheus_client's own convention for its multiprocess mode.
_SHARED_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


def count_across_processes(directory: Path) -> None:
    """From now on, in this process and the workers it forks, request counters live in
    memory-mapped files in ``directory`` (prometheus_client's multiprocess mode), so
    ``/metrics`` answered by any ``serve`` worker sums every worker. Files left by an earlier
    run are removed: counters start again at zero with the server, as in one process."""
    directory.mkdir(mode=0o700, exist_ok=True)
    for old in directory.glob("*.db"):
        old.unlink()
    os.environ[_SHARED_DIRECTORY] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


# OCSP answers come from pre-signed responses (milliseconds); ACME finalize signs (tens of
# milliseconds); validation-heavy calls can take seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics(Collector):
    """The counters and histograms, kept outside any global registry (one set per platform)."""

    def __init__(self) -> None:
        shared = getattr(values.ValueClass, "_multiprocess", False)
        self._shared = os.environ.get(_SHARED_DIRECTORY) if shared else None
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
        # Enrolment protocols (EST, SCEP) count what each request came to: issued, refused
        # (policy, names, credential scope), unauthenticated, bad_request, error.
        self.enrolments = Counter(
            "certfleet_enrolments",
            "Enrolment requests by protocol (est, scep) and outcome",
            ["protocol", "outcome"],
            registry=None,
        )

    def count_enrolment(self, protocol: str, outcome: str) -> None:
        self.enrolments.labels(protocol, outcome).inc()

    def observe(self, protocol: str, endpoint: str, method: str, code: int, seconds: float) -> None:
        if protocol == "acme":
            self.acme_requests.labels(endpoint, method, str(code)).inc()
            self.acme_latency.labels(endpoint).observe(seconds)
        else:
            self.ocsp_requests.labels(method, str(code)).inc()
            self.ocsp_latency.labels(method).observe(seconds)

    def collect(self) -> Iterable[Metric]:
        if self._shared is not None:  # every worker's counts, summed
            collector = MultiProcessCollector(None, path=self._shared)  # type: ignore[no-untyped-call]
            yield from collector.collect()  # type: ignore[no-untyped-call]
            return
        for metric in (
            self.acme_requests,
            self.acme_latency,
            self.ocsp_requests,
            self.ocsp_latency,
            self.enrolments,
        ):
            yield from metric.collect()

"""``certfleet_key_backend_up``: whether the CA keys can sign now (an HSM token present)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["KeyBackendCollector"]


class KeyBackendCollector(Collector):
    """Probes the key backend at each scrape: ``unavailable`` returns why it cannot sign,
    or None (the PKCS#11 backend retries a lost token at most every few seconds, so a
    frequent scrape does not hammer a dead HSM)."""

    def __init__(self, backend: str, unavailable: Callable[[], str | None]) -> None:
        self._backend = backend
        self._unavailable = unavailable

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "certfleet_key_backend_up",
            "1 while the CA key backend can sign, 0 while it cannot (issuance answers 503).",
            labels=["backend"],
        )
        up.add_metric([self._backend], 0.0 if self._unavailable() else 1.0)
        yield up

"""``certfleet_siem_undelivered_entries``: audit entries not yet delivered to the SIEM."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["SiemBacklogCollector"]


class SiemBacklogCollector(Collector):
    """Reads the backlog at each scrape (the audit head's seq minus the SIEM cursor: two
    primary-key reads). It grows while the collector is down and falls back to zero once
    delivery resumes; alert when it stays above zero."""

    def __init__(self, backlog: Callable[[], int]) -> None:
        self._backlog = backlog

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "certfleet_siem_undelivered_entries",
            "Audit entries written but not yet delivered to the SIEM collector.",
            value=float(self._backlog()),
        )

"""One set of metrics per platform (built by the composition root, certfleet.app, and shared
by the HTTPS app, the plain-HTTP app and the optional metrics listener of the same process);
and the text exposition of a scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from certfleet.ca import CaCertificate
from certfleet.clock import Clock
from certfleet.metrics._collector import AuditCounters, FleetCollector
from certfleet.metrics._counters import RequestMetrics
from certfleet.metrics._key_backend import KeyBackendCollector
from certfleet.metrics._ports import MetricsQueries
from certfleet.metrics._settings import MetricsSettings
from certfleet.metrics._siem import SiemBacklogCollector

__all__ = ["PlatformMetrics"]


class _TeamView(Collector):
    """The fleet as one team sees it (``team`` None: everything)."""

    def __init__(self, fleet: FleetCollector, team: str | None) -> None:
        self._fleet = fleet
        self._team = team

    def collect(self) -> Iterable[Metric]:
        return self._fleet.collect_for(self._team)


class PlatformMetrics:
    def __init__(
        self,
        settings: MetricsSettings,
        queries: MetricsQueries,
        hierarchy: Callable[[], Sequence[CaCertificate]],
        clock: Clock,
        key_backend: tuple[str, Callable[[], str | None]] | None = None,
        siem_backlog: Callable[[], int] | None = None,
    ) -> None:
        self.settings = settings
        self.requests = RequestMetrics()
        self._keys = KeyBackendCollector(*key_backend) if key_backend else None
        self._siem = SiemBacklogCollector(siem_backlog) if siem_backlog else None
        self.fleet = FleetCollector(queries, AuditCounters(queries), hierarchy, clock, settings.cache_seconds)

    def registry(self, team: str | None) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_TeamView(self.fleet, team))
        registry.register(self.requests)
        if self._keys is not None:
            registry.register(self._keys)
        if self._siem is not None:
            registry.register(self._siem)
        return registry

    def exposition(self, team: str | None) -> bytes:
        return generate_latest(self.registry(team))

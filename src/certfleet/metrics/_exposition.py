"""One set of metrics per platform, shared by the HTTPS app, the plain-HTTP app and the
optional metrics listener of the same process; and the text exposition of a scrape."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from certfleet.app import Platform
from certfleet.metrics._collector import AuditCounters, FleetCollector
from certfleet.metrics._requests import RequestMetrics
from certfleet.metrics._settings import MetricsSettings
from certfleet.store._web_metrics import MetricsQueries

__all__ = ["PlatformMetrics", "metrics_for"]


class _TeamView(Collector):
    """The fleet as one team sees it (``team`` None: everything)."""

    def __init__(self, fleet: FleetCollector, team: str | None) -> None:
        self._fleet = fleet
        self._team = team

    def collect(self) -> Iterable[Metric]:
        return self._fleet.collect_for(self._team)


class PlatformMetrics:
    def __init__(self, platform: Platform) -> None:
        self.settings = MetricsSettings.load(platform.settings.data_dir.config_file)
        self.requests = RequestMetrics()
        queries = MetricsQueries(platform.database)
        self.fleet = FleetCollector(
            queries,
            AuditCounters(queries),
            platform.authorities.hierarchy,
            platform.clock,
            self.settings.cache_seconds,
        )

    def registry(self, team: str | None) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_TeamView(self.fleet, team))
        registry.register(self.requests)
        return registry

    def exposition(self, team: str | None) -> bytes:
        return generate_latest(self.registry(team))


_lock = threading.Lock()
_by_platform: dict[int, PlatformMetrics] = {}


def metrics_for(platform: Platform) -> PlatformMetrics:
    """The platform's metrics, made on first use and dropped with the platform."""
    key = id(platform)
    with _lock:
        found = _by_platform.get(key)
        if found is None:
            found = _by_platform[key] = PlatformMetrics(platform)
            weakref.finalize(platform, _forget, key)
        return found


def _forget(key: int) -> None:
    with _lock:
        _by_platform.pop(key, None)

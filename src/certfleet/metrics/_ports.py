"""What the metrics need, declared by the consumer (certfleet.app provides it): the
aggregate reads behind a scrape, and the token check of ``/metrics``. Metrics never import
the store."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

from certfleet.services import TokenService

if TYPE_CHECKING:
    from certfleet.metrics._exposition import PlatformMetrics

__all__ = ["InventorySnapshot", "MetricsHost", "MetricsQueries"]


class InventorySnapshot(Protocol):
    """One scrape's worth of aggregates (``team`` narrows everything team-owned)."""

    @property
    def certificates(self) -> list[tuple[str, str, str, int]]: ...  # (status, issuer, team, count)
    @property
    def expiring(self) -> list[tuple[str, int, int]]: ...  # (team, within days, count)
    @property
    def earliest_expiry(self) -> dict[str, dt.datetime]: ...  # CA id -> earliest active notAfter
    @property
    def crls(self) -> list[tuple[str, str, dt.datetime, dt.datetime]]: ...  # (CA, kind, this, next)
    @property
    def oldest_ocsp(self) -> dict[str, dt.datetime]: ...  # CA id -> oldest response's thisUpdate
    @property
    def findings(self) -> list[tuple[str, str, int]]: ...  # (severity, code, open count)
    @property
    def scan_runs(self) -> list[tuple[str, str, int]]: ...  # (kind, status, count)
    @property
    def scan_durations(self) -> list[tuple[str, float]]: ...  # (kind, seconds) of finished scans
    @property
    def algorithms(self) -> list[tuple[str, int, str, int]]: ...  # (key alg, size, signature, count)


class MetricsQueries(Protocol):
    def snapshot(
        self, now: dt.datetime, team: str | None, windows: tuple[int, ...], ca_ids: list[str]
    ) -> InventorySnapshot: ...

    def audit_actions(self, after_seq: int) -> tuple[int, list[tuple[str, int]]]:
        """(the newest seq, entries per action after ``after_seq``)."""
        ...


class MetricsHost(Protocol):
    """What ``/metrics`` on the HTTPS listener reaches through ``app.state.platform``."""

    @property
    def tokens(self) -> TokenService: ...
    @property
    def metrics(self) -> PlatformMetrics: ...

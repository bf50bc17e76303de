"""Observers: how a running scan reports progress (console output is one observer among
others, as in sslyze)."""

from __future__ import annotations

from typing import Protocol

from certfleet.discovery.outcomes import EndpointOutcome, FileOutcome

__all__ = ["NullObserver", "ScanObserver"]


class ScanObserver(Protocol):
    """Told about a scan as it runs, on the scanning thread: keep each call quick."""

    def on_start(self, total: int | None) -> None:
        """The number of endpoints to probe (``None`` for a filesystem walk)."""
        ...

    def on_target_start(self, target: str) -> None: ...

    def on_outcome(self, outcome: EndpointOutcome | FileOutcome) -> None: ...


class NullObserver:
    def on_start(self, total: int | None) -> None:
        pass

    def on_target_start(self, target: str) -> None:
        pass

    def on_outcome(self, outcome: EndpointOutcome | FileOutcome) -> None:
        pass

"""The ``[lifecycle]`` section of ``config.toml``: the renewal scheduler and campaign workers.

Defined here rather than in ``certfleet.lifecycle`` because ``config`` sits below it in the
layers; ``certfleet.lifecycle.settings`` re-exports it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from certfleet.errors import ConfigurationError

__all__ = ["LifecycleSettings"]

_LIMITS: dict[str, tuple[float, float]] = {
    "interval_seconds": (0.1, 86400),
    "lease_seconds": (1, 86400),
    "batch_size": (1, 10_000),
    "max_per_round": (1, 1_000_000),
}


@dataclass(frozen=True)
class LifecycleSettings:
    """How ``certfleet serve`` runs renewals and campaigns.

    * ``scheduler`` (default true): run the background loop at all.
    * ``interval_seconds`` (default 60): pause between rounds. Renewal times are days apart;
      a minute keeps the database quiet and a renewal never more than a minute late.
    * ``lease_seconds`` (default 300): how long a worker owns the jobs it leased. Far longer
      than a batch takes (milliseconds per certificate), so a live worker never loses a lease;
      a crashed worker's jobs become due again after at most this long.
    * ``batch_size`` (default 100): jobs or campaign items leased at once.
    * ``max_per_round`` (default 10000): renewals per round, so one round cannot starve the
      campaigns that run after it.
    """

    scheduler: bool = True
    interval_seconds: float = 60.0
    lease_seconds: float = 300.0
    batch_size: int = 100
    max_per_round: int = 10_000

    def __post_init__(self) -> None:
        for name, (low, high) in _LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigurationError(f"lifecycle.{name} must be between {low:g} and {high:g}")

    @property
    def lease(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.lease_seconds)

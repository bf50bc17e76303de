"""The ``[lifecycle]`` table of config.toml: the renewal scheduler and campaign workers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from certfleet.config import read_section
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

    @classmethod
    def from_table(cls, table: Mapping[str, object], where: str = "[lifecycle]") -> LifecycleSettings:
        values: dict[str, object] = {}
        for key, raw in table.items():
            if key == "scheduler":
                if not isinstance(raw, bool):
                    raise ConfigurationError(f"{where}: scheduler must be true or false")
                values[key] = raw
            elif key in ("interval_seconds", "lease_seconds"):
                if isinstance(raw, bool) or not isinstance(raw, int | float):
                    raise ConfigurationError(f"{where}: {key} must be a number")
                values[key] = float(raw)
            elif key in ("batch_size", "max_per_round"):
                if isinstance(raw, bool) or not isinstance(raw, int):
                    raise ConfigurationError(f"{where}: {key} must be an integer")
                values[key] = raw
            else:
                raise ConfigurationError(f"{where}: unknown setting {key!r}")
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc.detail}") from exc

    @classmethod
    def load(cls, config_file: Path) -> LifecycleSettings:
        """The ``[lifecycle]`` table of ``config_file``; defaults when either is absent."""
        table, where = read_section(config_file, "lifecycle")
        return cls.from_table(table, where)

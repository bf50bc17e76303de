"""The ``[metrics]`` table of config.toml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from certfleet.access import Scope
from certfleet.config import parse_bind, read_section
from certfleet.errors import CertfleetError, ConfigurationError

__all__ = ["MetricsSettings"]


@dataclass(frozen=True)
class MetricsSettings:
    """How ``/metrics`` is protected.

    * ``scope`` (default ``"read"``): the token scope a scraper needs on the HTTPS listener
      (``Authorization: Bearer``). A team token sees its team's certificates, findings and
      scans; an admin token sees all. CA health and request counters are the same for all.
    * ``listen`` (``"HOST:PORT"``, default unset): serve ``/metrics`` without a token on a
      listener of its own instead (bind it to loopback or a monitoring network), and not on
      the HTTPS listener at all.
    * ``cache_seconds`` (default 10): how long one scrape's database aggregates are reused,
      so several Prometheus servers scraping a million-row inventory cost one read.
    """

    scope: Scope = Scope.READ
    listen: tuple[str, int] | None = None
    cache_seconds: float = 10.0

    @classmethod
    def from_table(cls, table: Mapping[str, object], where: str = "[metrics]") -> MetricsSettings:
        values: dict[str, object] = {}
        for key, raw in table.items():
            if key == "scope":
                if not isinstance(raw, str):
                    raise ConfigurationError(f"{where}: scope must be a string")
                try:
                    values["scope"] = Scope.parse(raw)
                except CertfleetError as exc:
                    raise ConfigurationError(f"{where}: {exc.detail}") from exc
            elif key == "listen":
                if not isinstance(raw, str):
                    raise ConfigurationError(f"{where}: listen must be a string HOST:PORT")
                values["listen"] = parse_bind(raw)
            elif key == "cache_seconds":
                if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 3600:
                    raise ConfigurationError(f"{where}: cache_seconds must be a number from 0 to 3600")
                values["cache_seconds"] = float(raw)
            else:
                raise ConfigurationError(f"{where}: unknown setting {key!r}")
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def load(cls, config_file: Path) -> MetricsSettings:
        """The ``[metrics]`` table of ``config_file``; defaults when either is absent."""
        table, where = read_section(config_file, "metrics")
        return cls.from_table(table, where)

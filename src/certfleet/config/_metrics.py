"""The ``[metrics]`` section of ``config.toml``: how ``/metrics`` is protected.

Defined here rather than in ``certfleet.metrics`` because ``config`` sits below it (and below
``certfleet.access``) in the layers; ``certfleet.metrics`` re-exports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from certfleet.config._addresses import parse_bind
from certfleet.config._table import toml
from certfleet.errors import ConfigurationError

__all__ = ["MetricsScope", "MetricsSettings"]

# The values of certfleet.access.Scope, which config may not import; a test keeps them equal.
MetricsScope = Literal["read", "issue", "revoke", "admin"]


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

    scope: MetricsScope = "read"
    listen: tuple[str, int] | None = field(default=None, metadata=toml(parse=parse_bind))
    cache_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.cache_seconds <= 3600:
            raise ConfigurationError("metrics.cache_seconds must be a number from 0 to 3600")

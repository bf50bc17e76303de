"""The ``[metrics]`` section of config.toml. Its value type is defined in ``certfleet.config``
(which sits below metrics in the layers and parses every section once); the scope it names
becomes a ``certfleet.access.Scope`` where a token is checked."""

from __future__ import annotations

from certfleet.config import MetricsSettings

__all__ = ["MetricsSettings"]

"""The ``[lifecycle]`` section of config.toml: the renewal scheduler and campaign workers.
Its value type is defined in ``certfleet.config`` (which sits below lifecycle in the layers
and parses every section once); re-exported here under the lifecycle package's name."""

from __future__ import annotations

from certfleet.config import LifecycleSettings

__all__ = ["LifecycleSettings"]

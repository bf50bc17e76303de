"""Channel types by name. Built-in types register when their module is imported, which the
first look-up here does; third-party ones through the
``certfleet.notification_channels`` entry-point group. An unknown type is tolerated: its
deliveries wait (and say why) until the plugin is installed."""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from certfleet.lifecycle.notifications._channel import Channel

__all__ = ["ENTRY_POINT_GROUP", "available", "channel_type", "register"]

ENTRY_POINT_GROUP = "certfleet.notification_channels"
_log = logging.getLogger("certfleet.notifications")
_TYPES: dict[str, type[Channel]] = {}
_loaded_entry_points = False
_BUILT_IN = ("webhook", "email", "slack")


def register(channel: type[Channel]) -> type[Channel]:
    """Register a channel type (usable as a class decorator)."""
    _TYPES[channel.type_name] = channel
    return channel


def _load_entry_points() -> None:
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    for module in _BUILT_IN:  # each registers its type on import (before any plugin)
        importlib.import_module(f"certfleet.lifecycle.notifications.{module}")
    _loaded_entry_points = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the dispatcher
            _log.error("cannot load notification channel %s: %s: %s", entry.name, type(exc).__name__, exc)
            continue
        if isinstance(loaded, type) and issubclass(loaded, Channel):
            _TYPES.setdefault(loaded.type_name, loaded)


def channel_type(name: str) -> type[Channel] | None:
    _load_entry_points()
    return _TYPES.get(name)


def available() -> tuple[str, ...]:
    _load_entry_points()
    return tuple(sorted(_TYPES))

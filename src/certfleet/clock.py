"""Time is injected: every component that needs 'now' takes a :class:`Clock`."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

__all__ = ["Clock", "SystemClock", "iso", "utc"]


def utc(value: dt.datetime) -> dt.datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken to be UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, the form every output of certfleet uses."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time as an aware UTC datetime."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

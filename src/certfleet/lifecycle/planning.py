"""When to renew a certificate, and when to try again after a failure: pure functions of the
certificate's dates, its serial and the time, so a fake clock drives every test.

The renewal time is

* inside the ARI window when one is set (RFC 9773 section 4.2: "select a uniform random time
  within the suggested window"; our "random" is a hash of the serial, so every node of a
  cluster computes the same time and a restart does not move it);
* else at two thirds of the lifetime: a third of the lifetime is left to recover from failed
  attempts, the rule Let's Encrypt's clients (certbot: 30 of 90 days) popularised;
* at half the lifetime for certificates living under ten days, whose last third (hours) is too
  short to ride out a failing CA, DNS or network.

Jitter of up to a twentieth of the lifetime either side spreads a batch issued in the same
minute (a migration, a campaign) over time instead of renewing it all again in one burst.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from certfleet.errors import InvalidInput

__all__ = [
    "JITTER_FRACTION",
    "SHORT_LIFETIME",
    "RenewalWindow",
    "backoff",
    "jitter_unit",
    "parse_duration",
    "renewal_time",
    "window_time",
]

SHORT_LIFETIME = dt.timedelta(days=10)
JITTER_FRACTION = 0.05
_BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=10), dt.timedelta(minutes=100))
_DAILY = dt.timedelta(days=1)


@dataclass(frozen=True)
class RenewalWindow:
    """An ARI suggested window (RFC 9773 section 4.2): renew at a time between ``start`` and
    ``end``; a window wholly in the past means "renew now"."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidInput("a renewal window needs aware datetimes")
        if self.end <= self.start:
            raise InvalidInput("a renewal window must end after it starts")


def jitter_unit(serial: str) -> float:
    """A number in [0, 1) fixed by the serial: SHA-256 of its normalised hex, first 64 bits."""
    digest = hashlib.sha256(serial.strip().lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def window_time(window: RenewalWindow, serial: str) -> dt.datetime:
    """The certificate's fixed point inside an ARI window."""
    return window.start + (window.end - window.start) * jitter_unit(serial)


def renewal_time(
    not_before: dt.datetime,
    not_after: dt.datetime,
    serial: str,
    window: RenewalWindow | None = None,
) -> dt.datetime:
    """When certfleet renews this certificate (see the module docstring for the rule)."""
    if window is not None:
        return window_time(window, serial)
    unit = jitter_unit(serial)
    lifetime = not_after - not_before
    if lifetime <= dt.timedelta(0):
        return not_before
    fraction = 0.5 if lifetime < SHORT_LIFETIME else 2 / 3
    jitter = lifetime * (JITTER_FRACTION * (2 * unit - 1))
    return not_before + lifetime * fraction + jitter


def backoff(failures: int) -> dt.timedelta:
    """The wait after the ``failures``-th failure in a row: 1 minute, 10, 100, then daily.

    Quick retries absorb a restart or a brief outage; the daily rhythm afterwards keeps a
    permanent refusal (a policy that now forbids the key) from hammering the CA while the
    reason stays on record for people to act on.
    """
    if failures < 1:
        raise ValueError("backoff is defined from the first failure on")
    return _BACKOFF[failures - 1] if failures <= len(_BACKOFF) else _DAILY


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"s": 1, "": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` or bare seconds; ``0`` means at once."""
    match = _DURATION.match(text)
    if not match:
        raise InvalidInput(f"bad duration {text!r}: expected a number and s, m, h, d or w (e.g. 7d)")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > 3650 * 86400:
        raise InvalidInput(f"duration {text!r} is longer than ten years")
    return dt.timedelta(seconds=seconds)

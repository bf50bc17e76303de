"""Errors of discovery. A failed probe is *not* an error: it is an outcome with a reason
(see :mod:`certfleet.discovery.outcomes`). Only input the user gave wrongly raises."""

from __future__ import annotations

from certfleet.errors import InvalidInput

__all__ = ["BadTarget"]


class BadTarget(InvalidInput):
    """A scan target, port, SNI name or option that cannot be understood."""

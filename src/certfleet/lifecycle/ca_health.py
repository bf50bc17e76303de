"""Checks behind CA rotation: does a CA live long enough for what it must still sign?

A CA cannot sign past its own expiry (a certificate outliving its issuer fails path
validation, RFC 5280 section 6.1.3), so each certificate it signs is cut to the CA's end. A
root that expires before the lifetime of a new intermediate (five years) makes every new
intermediate short-lived, and one expiring within a leaf lifetime shortens the leaves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["CaWarning", "expiry_warnings"]


@dataclass(frozen=True)
class CaWarning:
    ca_id: str
    severity: str  # "warning" or "critical"
    message: str


def _date(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d")


def expiry_warnings(
    ca_id: str,
    role: str,
    not_after: dt.datetime,
    now: dt.datetime,
    *,
    intermediate_lifetime: dt.timedelta,
    leaf_lifetime: dt.timedelta,
) -> list[CaWarning]:
    """Warnings for one CA. A root must outlive a new intermediate; any CA must outlive the
    longest leaf it may still issue."""
    if not_after <= now:
        return [CaWarning(ca_id, "critical", f"{role} CA {ca_id} expired on {_date(not_after)}")]
    warnings: list[CaWarning] = []
    if role == "root" and not_after < now + intermediate_lifetime:
        warnings.append(
            CaWarning(
                ca_id,
                "warning",
                f"root CA {ca_id} expires on {_date(not_after)}, before the "
                f"{intermediate_lifetime.days}-day lifetime of a new intermediate: new intermediates "
                "are cut to the root's expiry; plan a new root",
            )
        )
    if not_after < now + leaf_lifetime:
        warnings.append(
            CaWarning(
                ca_id,
                "critical",
                f"{role} CA {ca_id} expires on {_date(not_after)}, within the {leaf_lifetime.days}-day "
                "lifetime of the longest certificate profile: certificates it signs now are cut short",
            )
        )
    return warnings

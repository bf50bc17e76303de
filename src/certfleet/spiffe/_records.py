"""What the SPIFFE registration stores, as values: the trust domain's settings, an entry with
its SVID tally, and the JWT signing keys with their windows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from certfleet.spiffe._entries import RegistrationEntry
from certfleet.spiffe._ids import TrustDomain

__all__ = ["EntryRecord", "JwtKeyRecord", "SpiffeConfig"]


@dataclass(frozen=True)
class SpiffeConfig:
    """``entries_revision`` grows with every change of the entry set; ``bundle_sequence``
    with every change of the trust bundle (its ``spiffe_sequence``)."""

    trust_domain: TrustDomain
    entries_revision: int
    bundle_sequence: int
    created_at: dt.datetime


@dataclass(frozen=True)
class EntryRecord:
    """An entry as the inventory aggregates it: one record (``certificate_id``, its live SVID)
    and counts instead of one row per SVID."""

    entry: RegistrationEntry
    certificate_id: int | None
    svids_issued: int
    live_svids: int
    last_issued_at: dt.datetime | None
    live_serial: str | None = None  # the inventory record's SVID: the newest one issued
    live_fingerprint_sha256: str | None = None
    live_not_after: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.entry.to_dict(),
            "team": self.entry.team,
            "created_at": self.entry.created_at.isoformat() if self.entry.created_at else None,
            "created_by": self.entry.created_by,
            "certificate_id": self.certificate_id,
            "svids_issued": self.svids_issued,
            "live_svids": self.live_svids,
            "last_issued_at": self.last_issued_at.isoformat() if self.last_issued_at else None,
            "live_serial": self.live_serial,
            "live_fingerprint_sha256": self.live_fingerprint_sha256,
            "live_not_after": self.live_not_after.isoformat() if self.live_not_after else None,
        }


@dataclass(frozen=True)
class JwtKeyRecord:
    """A JWT signing key: it signs from ``active_from`` until ``retire_at`` and stays in the
    bundle until ``publish_until`` (the last token it signed has expired by then). Its private
    half lives in the key backend under ``key_ref``, encrypted like the CA keys."""

    kid: str
    generation: int
    key_ref: str
    public_key: ec.EllipticCurvePublicKey
    created_at: dt.datetime
    active_from: dt.datetime
    retire_at: dt.datetime
    publish_until: dt.datetime

    def signs_at(self, now: dt.datetime) -> bool:
        return self.active_from <= now < self.retire_at

    def published_at(self, now: dt.datetime) -> bool:
        return now < self.publish_until

"""What the dashboard's inventory search asks for and gets back: the filter, the sort orders
and one row of the result (a summary of a certificate, without its DER). The store answers
these with keyset pagination (certfleet.store's web queries)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from certfleet.inventory._records import Source, Status

__all__ = ["InventoryFilter", "InventoryPage", "InventoryRow", "SortKey"]

_ACTIVE = Status.ACTIVE.value


class SortKey(enum.StrEnum):
    EXPIRES = "expires"  # notAfter
    NAME = "name"  # subject common name
    SEEN = "seen"  # first recorded (the row id)


@dataclass(frozen=True)
class InventoryFilter:
    """What the inventory page filters on. ``text`` is a name prefix (any SAN), a serial or a
    fingerprint; ``issuer`` a CA id or an exact issuer DN; ``expires_after`` is inclusive and
    ``expires_before`` exclusive; ``location`` a substring of where discovery saw it."""

    text: str | None = None
    status: Status | None = None
    issuer: str | None = None
    team: str | None = None
    key_algorithm: str | None = None
    key_size: int | None = None
    expiring_days: int | None = None
    expires_after: dt.datetime | None = None
    expires_before: dt.datetime | None = None
    source: Source | None = None
    location: str | None = None
    sort: SortKey = SortKey.EXPIRES
    descending: bool = False


@dataclass(frozen=True)
class InventoryRow:
    id: int
    serial: str
    fingerprint_sha256: str
    common_name: str | None
    subject: str
    sans: tuple[str, ...]
    issuer: str
    issuer_ca_id: str | None
    not_before: dt.datetime
    not_after: dt.datetime
    key_algorithm: str
    key_size: int
    source: str
    status: str
    team: str | None
    first_seen: dt.datetime

    def effective_status(self, now: dt.datetime) -> str:
        # As CertificateRecord.effective_status: RFC 5280 4.1.2.5, valid through notAfter.
        return Status.EXPIRED.value if self.status == _ACTIVE and self.not_after < now else self.status

    @property
    def key_type(self) -> str:
        if self.key_algorithm == "rsa":
            return f"rsa-{self.key_size}"
        if self.key_algorithm == "ec":
            return f"ec-p{self.key_size}"
        return self.key_algorithm


@dataclass(frozen=True)
class InventoryPage:
    rows: list[InventoryRow]
    next_cursor: str | None

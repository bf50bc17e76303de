"""What the inventory keeps about trust stores: which stores, on which hosts, trust which
root (each root once in the inventory, by fingerprint; many locations per root), and the
storage interface ``certfleet.store`` implements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from certfleet.clock import iso

if TYPE_CHECKING:
    from certfleet.inventory import CertificateRecord

__all__ = ["AnchorLocation", "AnchorSighting", "LeafSighting", "StorePlace", "TrustAnchorRepository"]


@dataclass(frozen=True, order=True)
class StorePlace:
    """One store on one host: ``kind`` is a :class:`~certfleet.discovery.truststores.StoreKind`
    value, ``path`` the store's file (its folder for NSS)."""

    host: str
    kind: str
    path: str


@dataclass(frozen=True)
class AnchorSighting:
    certificate_id: int
    place: StorePlace
    seen_at: dt.datetime


@dataclass(frozen=True)
class AnchorLocation:
    certificate_id: int
    place: StorePlace
    first_seen: dt.datetime
    last_seen: dt.datetime
    gone_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.place.host,
            "store": self.place.kind,
            "path": self.place.path,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "gone_at": iso(self.gone_at),
        }


@dataclass(frozen=True)
class LeafSighting:
    """An end-entity certificate present somewhere (an endpoint or a file), for reports."""

    record: CertificateRecord
    kind: str
    location: str


class TrustAnchorRepository(Protocol):
    def record(self, sightings: Sequence[AnchorSighting]) -> None:
        """Insert new locations; for known ones move last_seen and clear gone_at."""
        ...

    def mark_gone_except(
        self, places: Sequence[StorePlace], keep: set[tuple[int, StorePlace]], at: dt.datetime
    ) -> int:
        """Locations present at ``places`` (stores just read) whose root is not in ``keep``
        get ``gone_at``; returns how many."""
        ...

    def present(self) -> Sequence[AnchorLocation]: ...

    def present_leaves(self) -> Sequence[LeafSighting]:
        """Every end-entity certificate at a location not gone."""
        ...

    def records(self, certificate_ids: Sequence[int]) -> dict[int, CertificateRecord]: ...

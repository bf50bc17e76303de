"""Trust-anchor locations: which stores on which hosts trust which root (see migration
0027_trust_stores). A host's stores hold a few hundred roots, so plain ORM statements do."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from certfleet.discovery.anchors import AnchorLocation, AnchorSighting, LeafSighting, StorePlace
from certfleet.store._discovery_bulk import chunks, digest
from certfleet.store._discovery_models import CertificateLocationRow
from certfleet.store._repositories import _record
from certfleet.store.models import Base, CertificateRow, UtcDateTime

if TYPE_CHECKING:
    from certfleet.inventory import CertificateRecord

__all__ = ["SqlTrustAnchorRepository", "TrustAnchorLocationRow"]

_ID = BigInteger().with_variant(Integer, "sqlite")


class TrustAnchorLocationRow(Base):
    __tablename__ = "trust_anchor_locations"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # certificate, host, kind, path
    place_sha256: Mapped[str] = mapped_column(String(64), index=True)  # host, kind, path
    certificate_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("certificates.id", ondelete="CASCADE"), index=True
    )
    host: Mapped[str] = mapped_column(String(255))
    store_kind: Mapped[str] = mapped_column(String(16))
    store_path: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    gone_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


def _place_key(place: StorePlace) -> str:
    return digest(place.host, place.kind, place.path)


def _key(certificate_id: int, place: StorePlace) -> str:
    return digest(str(certificate_id), place.host, place.kind, place.path)


def _location(row: TrustAnchorLocationRow) -> AnchorLocation:
    place = StorePlace(row.host, row.store_kind, row.store_path)
    return AnchorLocation(row.certificate_id, place, row.first_seen, row.last_seen, row.gone_at)


class SqlTrustAnchorRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def record(self, sightings: Sequence[AnchorSighting]) -> None:
        wanted = {_key(s.certificate_id, s.place): s for s in sightings}
        keys = list(wanted)
        known: dict[str, TrustAnchorLocationRow] = {}
        for chunk in chunks(keys):
            stmt = select(TrustAnchorLocationRow).where(TrustAnchorLocationRow.key_sha256.in_(chunk))
            known.update((row.key_sha256, row) for row in self._session.scalars(stmt))
        for key, sighting in wanted.items():
            row = known.get(key)
            if row is not None:
                row.last_seen = sighting.seen_at
                row.gone_at = None
                continue
            place = sighting.place
            self._session.add(
                TrustAnchorLocationRow(
                    key_sha256=key,
                    place_sha256=_place_key(place),
                    certificate_id=sighting.certificate_id,
                    host=place.host[:255],
                    store_kind=place.kind,
                    store_path=place.path,
                    first_seen=sighting.seen_at,
                    last_seen=sighting.seen_at,
                )
            )
        self._session.flush()

    def mark_gone_except(
        self, places: Sequence[StorePlace], keep: set[tuple[int, StorePlace]], at: dt.datetime
    ) -> int:
        kept = {_key(cid, place) for cid, place in keep}
        gone = 0
        for chunk in chunks([_place_key(p) for p in places]):
            stmt = select(TrustAnchorLocationRow).where(
                TrustAnchorLocationRow.place_sha256.in_(chunk), TrustAnchorLocationRow.gone_at.is_(None)
            )
            for row in self._session.scalars(stmt):
                if row.key_sha256 not in kept:
                    row.gone_at = at
                    gone += 1
        self._session.flush()
        return gone

    def present(self) -> Sequence[AnchorLocation]:
        stmt = (
            select(TrustAnchorLocationRow)
            .where(TrustAnchorLocationRow.gone_at.is_(None))
            .order_by(
                TrustAnchorLocationRow.certificate_id, TrustAnchorLocationRow.host, TrustAnchorLocationRow.id
            )
        )
        return [_location(row) for row in self._session.scalars(stmt)]

    def present_leaves(self) -> Sequence[LeafSighting]:
        loc = CertificateLocationRow
        stmt = (
            select(CertificateRow, loc.kind, loc.location)
            .join(loc, loc.certificate_id == CertificateRow.id)
            .where(loc.leaf.is_(True), loc.gone_at.is_(None))
            .order_by(loc.id)
        )
        return [
            LeafSighting(_record(row), kind, location) for row, kind, location in self._session.execute(stmt)
        ]

    def records(self, certificate_ids: Sequence[int]) -> dict[int, CertificateRecord]:
        found: dict[int, CertificateRecord] = {}
        for chunk in chunks(sorted(set(certificate_ids))):
            for row in self._session.scalars(select(CertificateRow).where(CertificateRow.id.in_(chunk))):
                found[row.id] = _record(row)
        return found

"""The SPIFFE registration's storage: the trust domain, entries with their SVID tallies and
the JWT signing keys. :class:`SqlSpiffeStore` opens a unit of work whose ``spiffe`` repository
shares its transaction with the audit log, so an entry and its audit entry commit together."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from certfleet.errors import Conflict
from certfleet.spiffe import (
    EntryRecord,
    JwtKeyRecord,
    RegistrationEntry,
    Selector,
    SpiffeConfig,
    SpiffeId,
    TrustDomain,
)
from certfleet.store._repositories import SqlAuditRepository, SqlCaRepository
from certfleet.store._revocation_models import RevocationRow
from certfleet.store._spiffe_models import SpiffeConfigRow, SpiffeEntryRow, SpiffeJwtKeyRow, SpiffeSvidRow
from certfleet.store._sql import rowcount
from certfleet.store._unit_of_work import Store
from certfleet.store.models import CertificateRow

__all__ = ["SpiffeUnitOfWork", "SqlSpiffeRepository", "SqlSpiffeStore"]


def entry_fingerprint(entry: RegistrationEntry) -> str:
    """One entry per (SPIFFE ID, parent, selector set): registering the same one twice is a
    conflict, as in SPIRE."""
    canonical = json.dumps([str(entry.spiffe_id), str(entry.parent_id), [str(s) for s in entry.selectors]])
    return hashlib.sha256(canonical.encode()).hexdigest()


def _entry(row: SpiffeEntryRow) -> RegistrationEntry:
    return RegistrationEntry(
        id=row.id,
        spiffe_id=SpiffeId.parse(row.spiffe_id),
        parent_id=SpiffeId.parse(row.parent_id),
        selectors=tuple(Selector.parse(s) for s in json.loads(row.selectors_json)),
        ttl=dt.timedelta(seconds=row.ttl_seconds),
        dns_names=tuple(json.loads(row.dns_names_json)),
        team=row.team,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _key(row: SpiffeJwtKeyRow) -> JwtKeyRecord:
    public = serialization.load_pem_public_key(row.public_pem.encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    return JwtKeyRecord(
        row.kid,
        row.generation,
        row.key_ref,
        public,
        row.created_at,
        row.active_from,
        row.retire_at,
        row.publish_until,
    )


class SqlSpiffeRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    # -- the trust domain ---------------------------------------------------------------

    def config(self) -> SpiffeConfig | None:
        row = self._session.get(SpiffeConfigRow, 1)
        if row is None:
            return None
        return SpiffeConfig(
            TrustDomain(row.trust_domain), row.entries_revision, row.bundle_sequence, row.created_at
        )

    def create_config(self, trust_domain: TrustDomain, now: dt.datetime) -> SpiffeConfig:
        if self._session.get(SpiffeConfigRow, 1) is not None:
            raise Conflict("SPIFFE is already initialised in this data directory")
        self._session.add(
            SpiffeConfigRow(
                id=1, trust_domain=trust_domain.name, entries_revision=1, bundle_sequence=1, created_at=now
            )
        )
        self._session.flush()
        return SpiffeConfig(trust_domain, 1, 1, now)

    def bump_bundle_sequence(self) -> None:
        self._session.execute(
            update(SpiffeConfigRow)
            .where(SpiffeConfigRow.id == 1)
            .values(bundle_sequence=SpiffeConfigRow.bundle_sequence + 1)
        )

    def _bump_revision(self) -> None:
        self._session.execute(
            update(SpiffeConfigRow)
            .where(SpiffeConfigRow.id == 1)
            .values(entries_revision=SpiffeConfigRow.entries_revision + 1)
        )

    # -- entries ------------------------------------------------------------------------

    def add_entry(self, entry: RegistrationEntry) -> None:
        fingerprint = entry_fingerprint(entry)
        clash = self._session.scalar(
            select(SpiffeEntryRow.id).where(SpiffeEntryRow.fingerprint == fingerprint)
        )
        if clash is not None:
            raise Conflict(
                f"entry {clash} already gives {entry.spiffe_id} to these selectors under this parent"
            )
        assert entry.created_at is not None
        self._session.add(
            SpiffeEntryRow(
                id=entry.id,
                fingerprint=fingerprint,
                spiffe_id=str(entry.spiffe_id),
                parent_id=str(entry.parent_id),
                selectors_json=json.dumps([str(s) for s in entry.selectors]),
                ttl_seconds=int(entry.ttl.total_seconds()),
                dns_names_json=json.dumps(list(entry.dns_names)),
                team=entry.team,
                created_at=entry.created_at,
                created_by=entry.created_by,
                certificate_id=None,
                svids_issued=0,
                last_issued_at=None,
            )
        )
        try:
            self._session.flush()
        except SqlIntegrityError as exc:  # the same entry registered concurrently
            raise Conflict(f"an identical entry for {entry.spiffe_id} was registered concurrently") from exc
        self._bump_revision()

    def delete_entry(self, entry_id: str) -> bool:
        deleted = rowcount(self._session.execute(delete(SpiffeEntryRow).where(SpiffeEntryRow.id == entry_id)))
        if deleted:
            self._bump_revision()
        return bool(deleted)

    def get_entry(self, entry_id: str) -> RegistrationEntry | None:
        row = self._session.get(SpiffeEntryRow, entry_id)
        return _entry(row) if row is not None else None

    def entries_by_id(self, entry_ids: Sequence[str]) -> list[RegistrationEntry]:
        stmt = select(SpiffeEntryRow).where(SpiffeEntryRow.id.in_(sorted(entry_ids)))
        return [_entry(r) for r in self._session.scalars(stmt)]

    def entries(self, *, parent_id: str | None = None) -> list[RegistrationEntry]:
        stmt = select(SpiffeEntryRow).order_by(SpiffeEntryRow.created_at, SpiffeEntryRow.id)
        if parent_id is not None:
            stmt = stmt.where(SpiffeEntryRow.parent_id == parent_id)
        return [_entry(r) for r in self._session.scalars(stmt)]

    def entry_records(self, now: dt.datetime, *, entry_id: str | None = None) -> list[EntryRecord]:
        """Entries with their tallies: the live SVID's record, SVIDs issued, SVIDs still valid
        and not revoked (two statements, whatever the number of entries)."""
        stmt = (
            select(
                SpiffeEntryRow,
                CertificateRow.serial,
                CertificateRow.fingerprint_sha256,
                CertificateRow.not_after,
            )
            .outerjoin(CertificateRow, CertificateRow.id == SpiffeEntryRow.certificate_id)
            .order_by(SpiffeEntryRow.created_at, SpiffeEntryRow.id)
        )
        live = (
            select(SpiffeSvidRow.entry_id, func.count())
            .where(SpiffeSvidRow.not_after > now)
            .where(~select(RevocationRow.serial).where(RevocationRow.serial == SpiffeSvidRow.serial).exists())
            .group_by(SpiffeSvidRow.entry_id)
        )
        if entry_id is not None:
            stmt = stmt.where(SpiffeEntryRow.id == entry_id)
            live = live.where(SpiffeSvidRow.entry_id == entry_id)
        counts = {str(e): int(n) for e, n in self._session.execute(live)}
        return [
            EntryRecord(
                _entry(r),
                r.certificate_id,
                r.svids_issued,
                counts.get(r.id, 0),
                r.last_issued_at,
                serial,
                fingerprint,
                not_after,
            )
            for r, serial, fingerprint, not_after in self._session.execute(stmt)
        ]

    def live_serials(self, entry_id: str, now: dt.datetime) -> list[str]:
        stmt = (
            select(SpiffeSvidRow.serial)
            .where(SpiffeSvidRow.entry_id == entry_id, SpiffeSvidRow.not_after > now)
            .where(~select(RevocationRow.serial).where(RevocationRow.serial == SpiffeSvidRow.serial).exists())
            .order_by(SpiffeSvidRow.issued_at)
        )
        return list(self._session.scalars(stmt))

    # -- JWT signing keys ---------------------------------------------------------------

    def jwt_keys(self) -> list[JwtKeyRecord]:
        return [
            _key(r)
            for r in self._session.scalars(select(SpiffeJwtKeyRow).order_by(SpiffeJwtKeyRow.generation))
        ]

    def add_jwt_key(self, key: JwtKeyRecord) -> None:
        pem = key.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        self._session.add(
            SpiffeJwtKeyRow(
                kid=key.kid,
                generation=key.generation,
                key_ref=key.key_ref,
                public_pem=pem,
                created_at=key.created_at,
                active_from=key.active_from,
                retire_at=key.retire_at,
                publish_until=key.publish_until,
            )
        )
        try:
            self._session.flush()
        except SqlIntegrityError as exc:
            raise Conflict(f"JWT key generation {key.generation} was created concurrently") from exc
        self.bump_bundle_sequence()

    def delete_jwt_keys(self, kids: Sequence[str]) -> None:
        if kids:
            self._session.execute(delete(SpiffeJwtKeyRow).where(SpiffeJwtKeyRow.kid.in_(list(kids))))
            self.bump_bundle_sequence()


class SpiffeUnitOfWork:
    """The SPIFFE repository, the CA registry and the audit log over one transaction."""

    def __init__(self, session: Session) -> None:
        self.spiffe = SqlSpiffeRepository(session)
        self.cas = SqlCaRepository(session)
        self.audit = SqlAuditRepository(session)


class SqlSpiffeStore:
    def __init__(self, store: Store) -> None:
        self._database = store.database

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[SpiffeUnitOfWork]:
        with self._database.session(read_only=read_only) as session:
            yield SpiffeUnitOfWork(session)

"""Repositories of discovery: scan runs, certificate locations and findings."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, CursorResult, Row, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from certfleet.discovery import FindingCode, Severity
from certfleet.discovery.records import (
    CertificateLocation,
    FindingQuery,
    LocationKind,
    NewFinding,
    ScanError,
    ScanRun,
    ScanStatus,
    Sighting,
    StoredFinding,
)
from certfleet.store._discovery_bulk import (
    add_certificates,
    known_certificates,
    sync_findings,
    table,
    upsert_sightings,
)
from certfleet.store._discovery_bulk import chunks as _chunks
from certfleet.store._discovery_bulk import digest as _digest
from certfleet.store._discovery_models import CertificateLocationRow, FindingRow, ScanErrorRow, ScanRunRow
from certfleet.store._sql import LIKE_ESCAPE, escape_like
from certfleet.store.models import CertificateRow

if TYPE_CHECKING:
    from certfleet.inventory import CertificateRecord

__all__ = ["SqlFindingRepository", "SqlLocationRepository", "SqlScanRunRepository"]

_L = table(CertificateLocationRow)
_R = table(ScanRunRow)


def _under(column: InstrumentedAttribute[str], roots: Sequence[str]) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    for root in roots:
        base = root.rstrip("/") or "/"
        prefix = base if base.endswith("/") else base + "/"
        clauses.append(column == base)
        clauses.append(column.like(escape_like(prefix) + "%", escape=LIKE_ESCAPE))
    return or_(*clauses)


class SqlScanRunRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    @staticmethod
    def _run(row: ScanRunRow) -> ScanRun:
        return ScanRun(
            id=row.id,
            kind=row.kind,
            status=ScanStatus(row.status),
            targets=tuple(json.loads(row.targets_json)),
            options=json.loads(row.options_json),
            requested_by=row.requested_by,
            created_at=row.created_at,
            team=row.team,
            started_at=row.started_at,
            finished_at=row.finished_at,
            targets_total=row.targets_total,
            succeeded=row.succeeded,
            failed=row.failed,
            certificates_found=row.certificates_found,
            certificates_new=row.certificates_new,
            findings=row.findings,
            error=row.error,
        )

    @staticmethod
    def _state(run: ScanRun) -> dict[str, Any]:
        """The columns that change as a run goes on."""
        return {
            "status": run.status.value,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "targets_total": run.targets_total,
            "succeeded": run.succeeded,
            "failed": run.failed,
            "certificates_found": run.certificates_found,
            "certificates_new": run.certificates_new,
            "findings": run.findings,
            "error": run.error,
        }

    def add(self, run: ScanRun) -> None:
        row = ScanRunRow(
            id=run.id,
            kind=run.kind,
            targets_json=json.dumps(list(run.targets)),
            options_json=json.dumps(run.options, sort_keys=True),
            team=run.team,
            requested_by=run.requested_by,
            created_at=run.created_at,
            **self._state(run),
        )
        self._session.add(row)
        self._session.flush()

    def update(self, run: ScanRun) -> None:
        # One UPDATE by id, the same statement whenever a run changes (it is compiled once
        # per process, while the scan's handshakes run): no ORM read of the row first.
        result = self._session.execute(update(_R).where(_R.c.id == run.id).values(self._state(run)))
        if cast(CursorResult[Any], result).rowcount == 0:
            self.add(run)

    def get(self, run_id: str) -> ScanRun | None:
        row = self._session.get(ScanRunRow, run_id)
        return self._run(row) if row else None

    def add_errors(self, run_id: str, errors: Sequence[ScanError]) -> None:
        rows = [
            {
                "scan_id": run_id,
                "target": e.target,
                "sni": e.sni or "",
                "status": e.status,
                "reason": e.reason,
            }
            for e in errors
        ]
        for chunk in _chunks(rows):
            self._session.execute(table(ScanErrorRow).insert(), list(chunk))

    def errors(self, run_id: str, limit: int) -> Sequence[ScanError]:
        rows = self._session.scalars(
            select(ScanErrorRow).where(ScanErrorRow.scan_id == run_id).order_by(ScanErrorRow.id).limit(limit)
        )
        return [ScanError(r.target, r.status, r.reason, r.sni or None) for r in rows]


def _location(row: Row[Any]) -> CertificateLocation:
    """A location from a row of :meth:`SqlLocationRepository._select` (plain columns: no
    ORM objects to build for the hundreds of rows a scan reads)."""
    return CertificateLocation(
        certificate_id=row.certificate_id,
        fingerprint_sha256=row.fingerprint_sha256,
        kind=LocationKind(row.kind),
        location=row.location,
        sni=row.sni,
        chain_position=row.chain_position,
        leaf=row.leaf,
        spki_sha256=row.spki_sha256,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        gone_at=row.gone_at,
        last_scan_id=row.last_scan_id,
        tls_version=row.tls_version,
        cipher=row.cipher,
    )


class SqlLocationRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _select(self) -> Any:
        return select(_L, CertificateRow.fingerprint_sha256).join(
            CertificateRow, CertificateRow.id == _L.c.certificate_id
        )

    def known_certificates(self, fingerprints: Sequence[str], seen_at: dt.datetime) -> dict[str, int]:
        return known_certificates(self._session, fingerprints, seen_at)

    def add_certificates(self, records: Sequence[CertificateRecord]) -> tuple[dict[str, int], set[str]]:
        return add_certificates(self._session, records)

    def record(self, sightings: Sequence[Sighting]) -> None:
        upsert_sightings(self._session, sightings)

    def present(
        self, kind: LocationKind, locations: Sequence[tuple[str, str]]
    ) -> Sequence[CertificateLocation]:
        places = [_digest(kind.value, location, sni) for location, sni in locations]
        out: list[CertificateLocation] = []
        for chunk in _chunks(places):
            stmt = self._select().where(
                CertificateLocationRow.place_sha256.in_(chunk), CertificateLocationRow.gone_at.is_(None)
            )
            out.extend(_location(row) for row in self._session.execute(stmt))
        return out

    def present_under(self, roots: Sequence[str]) -> Sequence[CertificateLocation]:
        if not roots:
            return []
        stmt = self._select().where(
            CertificateLocationRow.kind == LocationKind.FILE.value,
            CertificateLocationRow.gone_at.is_(None),
            _under(CertificateLocationRow.location, roots),
        )
        return [_location(row) for row in self._session.execute(stmt)]

    def mark_gone(
        self, certificate_id: int, kind: LocationKind, location: str, sni: str, at: dt.datetime
    ) -> None:
        self._session.execute(
            update(CertificateLocationRow)
            .where(
                CertificateLocationRow.key_sha256 == _digest(str(certificate_id), kind.value, location, sni),
                CertificateLocationRow.gone_at.is_(None),
            )
            .values(gone_at=at)
        )

    def mark_all_gone(self, locations: Sequence[CertificateLocation], at: dt.datetime) -> None:
        keys = [_digest(str(g.certificate_id), g.kind.value, g.location, g.sni) for g in locations]
        for chunk in _chunks(keys):
            self._session.execute(
                update(_L).where(_L.c.key_sha256.in_(chunk), _L.c.gone_at.is_(None)).values(gone_at=at)
            )

    def mark_gone_unless_seen(
        self, kind: LocationKind, locations: Sequence[tuple[str, str]], scan_id: str, at: dt.datetime
    ) -> None:
        # The scan's sightings carry its id (record() ran first): what is present at these
        # places without it was not seen again. One UPDATE, no rows read back.
        places = [_digest(kind.value, location, sni) for location, sni in locations]
        for chunk in _chunks(places):
            self._session.execute(
                update(_L)
                .where(
                    _L.c.place_sha256.in_(chunk),
                    _L.c.gone_at.is_(None),
                    or_(_L.c.last_scan_id.is_(None), _L.c.last_scan_id != scan_id),
                )
                .values(gone_at=at)
            )

    def for_certificate(self, certificate_id: int) -> Sequence[CertificateLocation]:
        stmt = (
            self._select()
            .where(CertificateLocationRow.certificate_id == certificate_id)
            .order_by(CertificateLocationRow.kind, CertificateLocationRow.id)
        )
        return [_location(row) for row in self._session.execute(stmt)]

    def for_certificates(self, certificate_ids: Sequence[int]) -> dict[int, list[CertificateLocation]]:
        out: dict[int, list[CertificateLocation]] = {i: [] for i in certificate_ids}
        for chunk in _chunks(sorted(out)):
            stmt = (
                self._select()
                .where(_L.c.certificate_id.in_(chunk))
                .order_by(_L.c.certificate_id, _L.c.kind, _L.c.id)
            )
            for row in self._session.execute(stmt):
                out[row.certificate_id].append(_location(row))
        return out

    def leaves_sharing_keys(self, spkis: Sequence[str]) -> Sequence[CertificateLocation]:
        present_leaves = (_L.c.leaf.is_(True), _L.c.gone_at.is_(None))
        out: list[CertificateLocation] = []
        for chunk in _chunks(list(dict.fromkeys(spkis))):
            # Only the keys at several locations come back: a fleet's leaves each have their
            # own, and building a location for each cost more than the rest of the query.
            shared = (
                select(_L.c.spki_sha256)
                .where(_L.c.spki_sha256.in_(chunk), *present_leaves)
                .group_by(_L.c.spki_sha256)
                .having(func.count() > 1)
            )
            stmt = self._select().where(_L.c.spki_sha256.in_(shared), *present_leaves)
            out.extend(_location(row) for row in self._session.execute(stmt))
        return out

    def known_intermediates(self, limit: int) -> Sequence[bytes]:
        ids = (
            select(CertificateLocationRow.certificate_id)
            .where(CertificateLocationRow.leaf.is_(False))
            .distinct()
            .limit(limit)
        )
        return list(self._session.scalars(select(CertificateRow.der).where(CertificateRow.id.in_(ids))))


def _finding(row: FindingRow, serial: str | None) -> StoredFinding:
    return StoredFinding(
        id=row.id,
        code=FindingCode(row.code),
        severity=Severity(row.severity),
        kind=LocationKind(row.kind),
        location=row.location,
        sni=row.sni,
        fingerprint_sha256=row.fingerprint_sha256,
        detail=row.detail,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        last_scan_id=row.last_scan_id,
        team=row.team,
        serial=serial,
        resolved_at=row.resolved_at,
    )


class SqlFindingRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def sync(
        self,
        scopes: set[tuple[str, str]],
        findings: Sequence[NewFinding],
        *,
        at: dt.datetime,
        scan_id: str,
        team: str | None,
    ) -> tuple[int, int]:
        return sync_findings(self._session, scopes, findings, at=at, scan_id=scan_id, team=team)

    def open_under(self, roots: Sequence[str]) -> set[tuple[str, str]]:
        if not roots:
            return set()
        stmt = select(FindingRow.location, FindingRow.sni).where(
            FindingRow.kind == LocationKind.FILE.value,
            FindingRow.resolved_at.is_(None),
            _under(FindingRow.location, roots),
        )
        return {(location, sni) for location, sni in self._session.execute(stmt).all()}

    def query(self, query: FindingQuery) -> Sequence[StoredFinding]:
        stmt = select(FindingRow, CertificateRow.serial).outerjoin(
            CertificateRow, CertificateRow.id == FindingRow.certificate_id
        )
        if not query.include_resolved:
            stmt = stmt.where(FindingRow.resolved_at.is_(None))
        if query.severity is not None:
            stmt = stmt.where(FindingRow.severity_rank >= query.severity.rank)
        if query.code is not None:
            stmt = stmt.where(FindingRow.code == query.code.value)
        if query.team is not None:
            stmt = stmt.where(FindingRow.team == query.team)
        if query.scan_id is not None:
            stmt = stmt.where(FindingRow.last_scan_id == query.scan_id)
        if query.after_id is not None:
            stmt = stmt.where(FindingRow.id > query.after_id)
        stmt = stmt.order_by(FindingRow.id)
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        return [_finding(row, serial) for row, serial in self._session.execute(stmt).all()]

"""The write path of a scan as bulk SQL: a fleet-wide scan writes hundreds of certificates,
locations and findings in one transaction, so each kind of row costs a few statements
(SQLAlchemy Core, executemany, ``IN`` lists of at most 500) instead of an ORM flush per row.

``INSERT ... ON CONFLICT`` keeps these statements correct when two scans on PostgreSQL
record the same certificate at once: the second neither fails nor adds a duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from certfleet.discovery.records import NewFinding, Sighting
from certfleet.inventory import CertificateRecord
from certfleet.store._certificate_rows import certificate_row
from certfleet.store._discovery_models import CertificateLocationRow, FindingRow
from certfleet.store._sql import dialect_insert
from certfleet.store.models import CertificateNameRow, CertificateRow

__all__ = [
    "IN_BATCH",
    "add_certificates",
    "chunks",
    "digest",
    "known_certificates",
    "sync_findings",
    "upsert_sightings",
]

IN_BATCH = 500  # bound every IN (...) list and multi-row VALUES: SQLite caps bound parameters


def table(row_class: Any) -> Table:
    """The Core table of an ORM row class (what bulk statements are written against)."""
    return cast(Table, row_class.__table__)


_C = table(CertificateRow)
_N = table(CertificateNameRow)
_L = table(CertificateLocationRow)
_F = table(FindingRow)


_T = TypeVar("_T")


def digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def chunks(items: Sequence[_T]) -> list[Sequence[_T]]:
    return [items[i : i + IN_BATCH] for i in range(0, len(items), IN_BATCH)]


def _ids_of(session: Session, fingerprints: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(fingerprints):
        stmt = select(_C.c.fingerprint_sha256, _C.c.id).where(_C.c.fingerprint_sha256.in_(chunk))
        found.update((fp, int(row_id)) for fp, row_id in session.execute(stmt))
    return found


def _touch(session: Session, ids: Iterable[int], seen_at: dt.datetime) -> None:
    for chunk in chunks(sorted(set(ids))):
        session.execute(update(_C).where(_C.c.id.in_(chunk)).values(last_seen=seen_at))


def known_certificates(session: Session, fingerprints: Sequence[str], seen_at: dt.datetime) -> dict[str, int]:
    """fingerprint -> id of those already in the inventory, their ``last_seen`` moved to
    ``seen_at`` (they keep their source, ``issued`` included)."""
    found = _ids_of(session, [fp.lower() for fp in dict.fromkeys(fingerprints)])
    _touch(session, found.values(), seen_at)
    return found


def add_certificates(
    session: Session, records: Sequence[CertificateRecord]
) -> tuple[dict[str, int], set[str]]:
    """Insert ``records`` (distinct fingerprints) with their names. Returns fingerprint -> id
    for every record and the fingerprints this call inserted: one another transaction added
    meanwhile gets its id and its ``last_seen`` moved, as a known certificate would."""
    ids: dict[str, int] = {}
    inserted: set[str] = set()
    if not records:
        return ids, inserted
    stmt = (
        dialect_insert(session, _C)
        .on_conflict_do_nothing(index_elements=["fingerprint_sha256"])
        .returning(_C.c.fingerprint_sha256, _C.c.id)
    )
    for chunk in chunks(records):
        rows = session.execute(stmt, [certificate_row(r) for r in chunk])
        for fp, row_id in rows:
            ids[fp] = int(row_id)
            inserted.add(fp)
    names = [
        {"certificate_id": ids[r.fingerprint_sha256], "name": name}
        for r in records
        if r.fingerprint_sha256 in inserted
        for name in dict.fromkeys(n.lower()[:255] for n in r.sans)
    ]
    if names:
        session.execute(_N.insert(), names)
    lost = [r.fingerprint_sha256 for r in records if r.fingerprint_sha256 not in ids]
    if lost:
        raced = _ids_of(session, lost)
        _touch(session, raced.values(), records[0].last_seen)
        ids.update(raced)
    return ids, inserted


def upsert_sightings(session: Session, sightings: Sequence[Sighting]) -> None:
    """Insert new sightings; a known one (same certificate, kind, location and SNI) gets its
    ``last_seen``, position, scan and TLS parameters updated and ``gone_at`` cleared (back
    again). ``first_seen`` never changes."""
    keyed = {digest(str(s.certificate_id), s.kind.value, s.location, s.sni): s for s in sightings}
    if not keyed:
        return
    insert = dialect_insert(session, _L)
    stmt = insert.on_conflict_do_update(
        index_elements=["key_sha256"],
        set_={
            "last_seen": insert.excluded.last_seen,
            "gone_at": None,
            "chain_position": insert.excluded.chain_position,
            "last_scan_id": insert.excluded.last_scan_id,
            "tls_version": insert.excluded.tls_version,
            "cipher": insert.excluded.cipher,
        },
    )
    rows = [
        {
            "key_sha256": key,
            "place_sha256": digest(s.kind.value, s.location, s.sni),
            "certificate_id": s.certificate_id,
            "kind": s.kind.value,
            "location": s.location,
            "sni": s.sni,
            "chain_position": s.chain_position,
            "leaf": s.leaf,
            "spki_sha256": s.spki_sha256,
            "first_seen": s.seen_at,
            "last_seen": s.seen_at,
            "gone_at": None,
            "last_scan_id": s.scan_id,
            "tls_version": s.tls_version,
            "cipher": s.cipher,
        }
        for key, s in keyed.items()
    ]
    for chunk in chunks(rows):
        session.execute(stmt, list(chunk))


def sync_findings(
    session: Session,
    scopes: set[tuple[str, str]],
    findings: Sequence[NewFinding],
    *,
    at: dt.datetime,
    scan_id: str,
    team: str | None,
) -> tuple[int, int]:
    """Open or refresh ``findings`` (one that came back after being resolved is a new
    occurrence: its ``first_seen`` restarts); resolve the open ones at ``scopes`` not raised
    again. Returns (open now in scope, resolved)."""
    keyed = {digest(f.code.value, f.location, f.sni, f.fingerprint_sha256): f for f in findings}
    state: dict[str, bool] = {}  # key -> resolved
    for chunk in chunks(list(keyed)):
        stmt = select(_F.c.key_sha256, _F.c.resolved_at).where(_F.c.key_sha256.in_(chunk))
        state.update((key, resolved is not None) for key, resolved in session.execute(stmt))
    fresh = [
        {
            "key_sha256": key,
            "place_sha256": digest(f.location, f.sni),
            "code": f.code.value,
            "severity": f.severity.value,
            "severity_rank": f.severity.rank,
            "kind": f.kind.value,
            "location": f.location,
            "sni": f.sni,
            "fingerprint_sha256": f.fingerprint_sha256,
            "certificate_id": f.certificate_id,
            "detail": f.detail,
            "team": team,
            "first_seen": at,
            "last_seen": at,
            "resolved_at": None,
            "last_scan_id": scan_id,
        }
        for key, f in keyed.items()
        if key not in state
    ]
    for rows in chunks(fresh):
        session.execute(_F.insert(), list(rows))
    for reopened in (False, True):
        values: dict[str, Any] = {
            "resolved_at": None,
            "last_seen": at,
            "detail": bindparam("b_detail"),
            "last_scan_id": scan_id,
            "certificate_id": func.coalesce(
                bindparam("b_certificate_id", type_=_F.c.certificate_id.type), _F.c.certificate_id
            ),
        }
        if reopened:
            values["first_seen"] = at  # it came back: a new occurrence
        params = [
            {"b_key": key, "b_detail": f.detail, "b_certificate_id": f.certificate_id}
            for key, f in keyed.items()
            if state.get(key) is reopened
        ]
        if params:
            refresh = update(_F).where(_F.c.key_sha256 == bindparam("b_key")).values(values)
            session.execute(refresh, params)
    stale: list[str] = []
    for chunk in chunks([digest(location, sni) for location, sni in scopes]):
        stmt = select(_F.c.key_sha256).where(_F.c.place_sha256.in_(chunk), _F.c.resolved_at.is_(None))
        stale.extend(key for key in session.scalars(stmt) if key not in keyed)
    for keys in chunks(stale):
        session.execute(update(_F).where(_F.c.key_sha256.in_(keys)).values(resolved_at=at))
    return len(keyed), len(stale)

"""Repositories implementing the interfaces the domain packages declare."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Select, String, select, type_coerce, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from certfleet.access import ApiToken, NamePattern, Scope
from certfleet.audit import GENESIS_HASH, AuditEntry
from certfleet.ca import CaCertificate
from certfleet.errors import Conflict
from certfleet.inventory import CertificateQuery, CertificateRecord, CertificateSummary, Source, Status
from certfleet.store._sql import LIKE_ESCAPE, escape_like, for_update
from certfleet.store.models import (
    ApiTokenRow,
    AuditHeadRow,
    AuditRow,
    CaRow,
    CertificateNameRow,
    CertificateRow,
    SerialRow,
)

__all__ = [
    "SqlAuditRepository",
    "SqlCaRepository",
    "SqlCertificateRepository",
    "SqlSerialRepository",
    "SqlTokenRepository",
]


def _record(row: CertificateRow) -> CertificateRecord:
    return CertificateRecord(
        id=row.id,
        serial=row.serial,
        fingerprint_sha256=row.fingerprint_sha256,
        subject=row.subject,
        common_name=row.common_name,
        sans=tuple(json.loads(row.sans_json)),
        issuer=row.issuer,
        issuer_ca_id=row.issuer_ca_id,
        not_before=row.not_before,
        not_after=row.not_after,
        key_algorithm=row.key_algorithm,
        key_size=row.key_size,
        signature_algorithm=row.signature_algorithm,
        profile=row.profile,
        source=Source(row.source),
        status=Status(row.status),
        team=row.team,
        tags=tuple(json.loads(row.tags_json)),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason,
        der=row.der,
    )


class SqlCertificateRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, record: CertificateRecord) -> CertificateRecord:
        row = CertificateRow(
            serial=record.serial,
            fingerprint_sha256=record.fingerprint_sha256,
            subject=record.subject,
            common_name=record.common_name,
            sans_json=json.dumps(list(record.sans)),
            issuer=record.issuer,
            issuer_ca_id=record.issuer_ca_id,
            not_before=record.not_before,
            not_after=record.not_after,
            key_algorithm=record.key_algorithm,
            key_size=record.key_size,
            signature_algorithm=record.signature_algorithm,
            profile=record.profile,
            source=record.source.value,
            status=record.status.value,
            team=record.team,
            tags_json=json.dumps(list(record.tags)),
            first_seen=record.first_seen,
            last_seen=record.last_seen,
            revoked_at=record.revoked_at,
            revocation_reason=record.revocation_reason,
            der=record.der,
        )
        try:
            with self._session.begin_nested():
                self._session.add(row)
                self._session.flush()
                for name in dict.fromkeys(n.lower() for n in record.sans):
                    self._session.add(CertificateNameRow(certificate_id=row.id, name=name[:255]))
                self._session.flush()
        except SqlIntegrityError as exc:
            raise Conflict(f"certificate {record.fingerprint_sha256} is already in the inventory") from exc
        return record.with_id(row.id)

    def get_by_fingerprint(self, fingerprint_sha256: str) -> CertificateRecord | None:
        row = self._session.scalar(
            select(CertificateRow).where(CertificateRow.fingerprint_sha256 == fingerprint_sha256.lower())
        )
        return _record(row) if row else None

    def get_by_serial(self, serial: str) -> Sequence[CertificateRecord]:
        rows = self._session.scalars(
            select(CertificateRow).where(CertificateRow.serial == serial.lower()).order_by(CertificateRow.id)
        )
        return [_record(r) for r in rows]

    def touch(self, record_id: int, seen_at: dt.datetime) -> None:
        self._session.execute(
            update(CertificateRow).where(CertificateRow.id == record_id).values(last_seen=seen_at)
        )

    def _filtered(self, query: CertificateQuery, now: dt.datetime) -> Select[CertificateRow]:
        stmt = select(CertificateRow)
        # "expired" is derived, as in CertificateRecord.effective_status: stored as active and
        # past notAfter (RFC 5280 4.1.2.5: valid through notAfter inclusive).
        if query.status is Status.EXPIRED:
            stmt = stmt.where(CertificateRow.status == Status.ACTIVE.value, CertificateRow.not_after < now)
        elif query.status is Status.ACTIVE:
            stmt = stmt.where(CertificateRow.status == Status.ACTIVE.value, CertificateRow.not_after >= now)
        elif query.status is not None:
            stmt = stmt.where(CertificateRow.status == query.status.value)
        if query.expiring_within is not None:
            stmt = stmt.where(
                CertificateRow.not_after >= now,
                CertificateRow.not_after <= now + query.expiring_within,
                CertificateRow.status == Status.ACTIVE.value,
            )
        if query.team is not None:
            stmt = stmt.where(CertificateRow.team == query.team)
        if query.issuer:
            text = query.issuer
            escaped = escape_like(text)
            stmt = stmt.where(
                (CertificateRow.issuer_ca_id == text)
                | CertificateRow.issuer.ilike(f"%{escaped}%", escape=LIKE_ESCAPE)
            )
        if query.san:
            # An uncorrelated IN lets both planners start from ix_certificate_names_name; a
            # correlated EXISTS made SQLite scan every certificate and probe per row.
            stmt = stmt.where(
                CertificateRow.id.in_(
                    select(CertificateNameRow.certificate_id).where(
                        CertificateNameRow.name == query.san.strip().lower()
                    )
                )
            )
        if query.after_id is not None:
            stmt = stmt.where(CertificateRow.id > query.after_id)
        return stmt

    def select_statement(self, query: CertificateQuery, now: dt.datetime) -> Select[CertificateRow]:
        """The SELECT that :meth:`query` runs (public so tests can EXPLAIN it)."""
        stmt = self._filtered(query, now).order_by(CertificateRow.id)
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        return stmt

    def query(self, query: CertificateQuery, now: dt.datetime) -> Sequence[CertificateRecord]:
        return [_record(r) for r in self._session.scalars(self.select_statement(query, now))]

    def summaries(self, query: CertificateQuery, now: dt.datetime) -> list[CertificateSummary]:
        """What :meth:`query` finds, as the few columns a listing shows, read as plain rows.
        On SQLite notAfter is read as the naive UTC text ``UtcDateTime`` stores and parsed
        here: SQLAlchemy's SQLite DATETIME parses each value with a regular expression."""
        c = CertificateRow
        text = self._session.get_bind().dialect.name == "sqlite"
        not_after = type_coerce(c.not_after, String).label("not_after") if text else c.not_after
        stmt = self.select_statement(query, now).with_only_columns(
            c.id, c.serial, c.subject, c.sans_json, c.issuer, not_after, c.source, c.status, c.team
        )
        parse, utc = dt.datetime.fromisoformat, dt.UTC
        return [
            CertificateSummary(
                id=r.id,
                serial=r.serial,
                subject=r.subject,
                sans=tuple(json.loads(r.sans_json)),
                issuer=r.issuer,
                not_after=parse(r.not_after).replace(tzinfo=utc) if text else r.not_after,
                source=Source(r.source),
                status=Status(r.status),
                team=r.team,
            )
            for r in self._session.execute(stmt)
        ]


class SqlSerialRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def reserve(self, serial: str, issuer_ca_id: str, at: dt.datetime) -> None:
        try:
            with self._session.begin_nested():
                self._session.add(
                    SerialRow(serial=serial, issuer_ca_id=issuer_ca_id, reserved_at=at, state="reserved")
                )
                self._session.flush()
        except SqlIntegrityError as exc:
            raise Conflict(f"serial {serial} is already taken") from exc

    def mark_issued(self, serial: str, fingerprint_sha256: str) -> None:
        self._session.execute(
            update(SerialRow)
            .where(SerialRow.serial == serial)
            .values(state="issued", fingerprint_sha256=fingerprint_sha256)
        )

    def get_state(self, serial: str) -> str | None:
        return self._session.scalar(select(SerialRow.state).where(SerialRow.serial == serial.lower()))


class SqlCaRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    @staticmethod
    def _ca(row: CaRow) -> CaCertificate:
        return CaCertificate(
            id=row.id,
            name=row.name,
            role=row.role,
            parent_id=row.parent_id,
            certificate=x509.load_der_x509_certificate(row.certificate_der),
            key_backend=row.key_backend,
            key_ref=row.key_ref,
            active=row.active,
        )

    def add(self, ca: CaCertificate) -> None:
        self._session.add(
            CaRow(
                id=ca.id,
                name=ca.name,
                role=ca.role,
                parent_id=ca.parent_id,
                certificate_der=ca.certificate.public_bytes(Encoding.DER),
                key_backend=ca.key_backend,
                key_ref=ca.key_ref,
                active=ca.active,
                created_at=ca.not_before,
            )
        )
        self._session.flush()

    def list(self) -> Sequence[CaCertificate]:
        rows = self._session.scalars(select(CaRow).order_by(CaRow.created_at, CaRow.role.desc()))
        return [self._ca(r) for r in rows]

    def get(self, ca_id: str) -> CaCertificate | None:
        row = self._session.get(CaRow, ca_id)
        return self._ca(row) if row else None


class SqlTokenRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    @staticmethod
    def _token(row: ApiTokenRow) -> ApiToken:
        return ApiToken(
            id=row.id,
            team=row.team,
            scope=Scope(row.scope),
            allow_names=tuple(NamePattern(p) for p in json.loads(row.allow_names_json)),
            secret_hash=row.secret_hash,
            created_at=row.created_at,
            description=row.description,
            revoked_at=row.revoked_at,
        )

    def add(self, token: ApiToken) -> None:
        self._session.add(
            ApiTokenRow(
                id=token.id,
                team=token.team,
                scope=token.scope.value,
                allow_names_json=json.dumps([p.text for p in token.allow_names]),
                secret_hash=token.secret_hash,
                description=token.description,
                created_at=token.created_at,
            )
        )
        self._session.flush()

    def get(self, token_id: str) -> ApiToken | None:
        row = self._session.get(ApiTokenRow, token_id)
        return self._token(row) if row else None

    def list(self) -> Sequence[ApiToken]:
        return [
            self._token(r)
            for r in self._session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.created_at))
        ]

    def revoke(self, token_id: str, at: dt.datetime) -> bool:
        result = self._session.execute(
            update(ApiTokenRow)
            .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(getattr(result, "rowcount", 0))


class SqlAuditRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def lock_head(self) -> tuple[int, str]:
        stmt = for_update(self._session, select(AuditHeadRow).where(AuditHeadRow.id == 1))
        row = self._session.scalar(stmt)
        if row is None:
            try:
                with self._session.begin_nested():
                    self._session.add(AuditHeadRow(id=1, seq=0, hash=GENESIS_HASH))
                    self._session.flush()
            except SqlIntegrityError:
                pass  # another writer created it; lock theirs
            row = self._session.scalar(stmt.execution_options(populate_existing=True))
            assert row is not None
        return row.seq, row.hash

    def append(self, entry: AuditEntry) -> None:
        self._session.add(
            AuditRow(
                seq=entry.seq,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                subject=entry.subject,
                details_json=json.dumps(entry.details, sort_keys=True),
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )
        self._session.execute(
            update(AuditHeadRow).where(AuditHeadRow.id == 1).values(seq=entry.seq, hash=entry.hash)
        )
        self._session.flush()

    def head(self) -> tuple[int, str]:
        row = self._session.get(AuditHeadRow, 1)
        return (row.seq, row.hash) if row else (0, GENESIS_HASH)

    def entries(self, *, after_seq: int = 0) -> Iterator[AuditEntry]:
        stmt = select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=1000)
        if after_seq:
            stmt = stmt.where(AuditRow.seq > after_seq)  # a page starts at its cursor (the seq index)
        for row in self._session.scalars(stmt):
            yield AuditEntry(
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject=row.subject,
                details=_load_details(row.details_json),
                prev_hash=row.prev_hash,
                hash=row.hash,
            )


def _load_details(text: str) -> dict[str, Any]:
    """Details as stored; text that is not a JSON object (an edited row) is kept verbatim so
    the list still shows it and the chain check reports the entry instead of crashing."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"undecodable": text}
    return value if isinstance(value, dict) else {"value": value}

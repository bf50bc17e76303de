"""Repositories of the revocation area (the interfaces of ``certfleet.revocation._ports``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from certfleet.revocation import (
    AlreadyRevoked,
    Revocation,
    RevocationReason,
    SerialStatus,
    StoredResponder,
)
from certfleet.store._crl_state import increment
from certfleet.store._revocation_generation import bump_generation
from certfleet.store._revocation_models import (
    BlockedKeyRow,
    OcspResponderRow,
    OcspResponseRow,
    RevocationRow,
)
from certfleet.store._revocation_store import SqlRevocationStore
from certfleet.store.models import CertificateRow, SerialRow

__all__ = ["SqlBlockedKeyRepository", "SqlRevocationRepository", "SqlRevocationStore"]


def _revocation(row: Any) -> Revocation:
    return Revocation(
        serial=row.serial,
        issuer_ca_id=row.issuer_ca_id,
        revoked_at=row.revoked_at,
        reason=RevocationReason(row.reason),
        expires_at=row.expires_at,
        invalidity_date=row.invalidity_date,
        seq=row.seq,
    )


class SqlRevocationRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def serial_status(self, serial: str) -> SerialStatus | None:
        row = self._session.get(SerialRow, serial)
        if row is None:
            return None
        revoked = self._session.get(RevocationRow, serial)
        return SerialStatus(
            row.issuer_ca_id, row.state, row.reserved_at, _revocation(revoked) if revoked else None
        )

    def record_serial(self, serial: str, issuer_ca_id: str, at: dt.datetime, fingerprint_sha256: str) -> None:
        if self._session.get(SerialRow, serial) is not None:
            return
        self._session.add(
            SerialRow(
                serial=serial,
                issuer_ca_id=issuer_ca_id,
                reserved_at=at,
                state="issued",
                fingerprint_sha256=fingerprint_sha256,
            )
        )
        self._session.flush()

    def add(self, revocation: Revocation) -> Revocation:
        seq = increment(self._session, revocation.issuer_ca_id, "revocation_seq")
        try:
            with self._session.begin_nested():
                self._session.add(
                    RevocationRow(
                        serial=revocation.serial,
                        issuer_ca_id=revocation.issuer_ca_id,
                        revoked_at=revocation.revoked_at,
                        reason=revocation.reason.value,
                        invalidity_date=revocation.invalidity_date,
                        expires_at=revocation.expires_at,
                        seq=seq,
                    )
                )
                self._session.flush()
        except SqlIntegrityError as exc:
            raise AlreadyRevoked(f"serial {revocation.serial} is already revoked", revocation.serial) from exc
        # Same transaction: every worker's in-memory OCSP answers are stale from its commit on.
        bump_generation(self._session)
        return Revocation(
            revocation.serial,
            revocation.issuer_ca_id,
            revocation.revoked_at,
            revocation.reason,
            revocation.expires_at,
            revocation.invalidity_date,
            seq,
        )

    def mark_certificate_revoked(self, record_id: int, at: dt.datetime, reason: RevocationReason) -> None:
        self._session.execute(
            update(CertificateRow)
            .where(CertificateRow.id == record_id)
            .values(status="revoked", revoked_at=at, revocation_reason=reason.value)
        )

    def invalidate_responses(self, serial: str) -> int:
        result = self._session.execute(delete(OcspResponseRow).where(OcspResponseRow.serial == serial))
        return int(getattr(result, "rowcount", 0) or 0)

    def invalidate_ca_responses(self, ca_id: str) -> int:
        result = self._session.execute(delete(OcspResponseRow).where(OcspResponseRow.ca_id == ca_id))
        return int(getattr(result, "rowcount", 0) or 0)

    def responders(self, ca_id: str) -> Sequence[StoredResponder]:
        rows = self._session.scalars(
            select(OcspResponderRow)
            .where(OcspResponderRow.ca_id == ca_id)
            .order_by(OcspResponderRow.created_at.desc(), OcspResponderRow.not_after.desc())
        )
        return [
            StoredResponder(
                r.ca_id, r.key_ref, x509.load_der_x509_certificate(r.certificate_der), r.created_at
            )
            for r in rows
        ]

    def add_responder(self, responder: StoredResponder) -> None:
        self._session.add(
            OcspResponderRow(
                key_ref=responder.key_ref,
                ca_id=responder.ca_id,
                certificate_der=responder.certificate.public_bytes(Encoding.DER),
                not_after=responder.certificate.not_valid_after_utc,
                created_at=responder.created_at,
            )
        )
        self._session.flush()

    def drop_responder(self, key_ref: str) -> None:
        self._session.execute(delete(OcspResponderRow).where(OcspResponderRow.key_ref == key_ref))


class SqlBlockedKeyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def block(self, spki_sha256: str, serial: str, at: dt.datetime) -> None:
        if self.is_blocked(spki_sha256):
            return
        try:
            with self._session.begin_nested():
                self._session.add(BlockedKeyRow(spki_sha256=spki_sha256, serial=serial, blocked_at=at))
                self._session.flush()
        except SqlIntegrityError:
            pass  # blocked concurrently: the first entry stays

    def is_blocked(self, spki_sha256: str) -> bool:
        return self._session.get(BlockedKeyRow, spki_sha256.lower()) is not None

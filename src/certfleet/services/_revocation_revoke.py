"""Revoking: one use case behind the CLI, the REST API and ACME revokeCert. One transaction
records the revocation, blocks a compromised key, writes the audit entry and the event."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from certfleet.access import Principal, Scope
from certfleet.audit import AuditLog, CertificateRef
from certfleet.ca import PROFILES, CaCertificate
from certfleet.clock import Clock, iso
from certfleet.errors import InvalidInput, NotFound
from certfleet.inventory import CertificateRecord, Source, Status
from certfleet.revocation import (
    AlreadyRevoked,
    IssuerIndex,
    Revocation,
    RevocationReason,
    SerialStatus,
    spki_sha256,
)
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services._revocation_cas import CaDirectory
from certfleet.services._revocation_responders import ResponderCertificates
from certfleet.services.notifications import Event, EventKind, certificate_event, emit
from certfleet.services.revocation_access import authorize_revocation, visible_to
from certfleet.x509 import CertificateFacts, fingerprint_sha256, serial_hex

__all__ = ["CertificateRevocation", "RevocationOutcome", "normalize_serial"]

# A serial reserved but never recorded belongs to a certificate that cannot outlive the
# longest profile; a day of slack covers the moments between reserving and signing.
_UNRECORDED_LIFETIME = max(p.max_validity for p in PROFILES.values()) + dt.timedelta(days=1)


@dataclass(frozen=True)
class RevocationOutcome:
    """What a revocation recorded. ``record`` is None for a serial that is not in the
    inventory (reserved or signed but never recorded, or a CA certificate)."""

    serial: str
    issuer_ca_id: str
    revoked_at: dt.datetime
    reason: RevocationReason
    invalidity_date: dt.datetime | None
    record: CertificateRecord | None
    key_blocked: bool

    def to_dict(self, now: dt.datetime) -> dict[str, Any]:
        """The JSON form shared by ``certfleet revoke`` and ``POST /api/v1/revocations``."""
        return {
            "serial": self.serial,
            "issuer_ca_id": self.issuer_ca_id,
            "revoked_at": iso(self.revoked_at),
            "reason": self.reason.value,
            "invalidity_date": iso(self.invalidity_date),
            "key_blocked": self.key_blocked,
            "certificate": self.record.to_dict(now) if self.record is not None else None,
        }


def normalize_serial(serial: str) -> str:
    """Hex in the inventory's form (lowercase, no colons, no leading zeros)."""
    text = serial.strip().lower().replace(":", "").removeprefix("0x")
    if not text or len(text) > 40 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput(f"bad serial {serial!r}: expected up to 40 hex digits")
    return text.lstrip("0") or "0"


class CertificateRevocation:
    def __init__(
        self, uow: UnitOfWorkFactory, cas: CaDirectory, responders: ResponderCertificates, clock: Clock
    ) -> None:
        self._uow = uow
        self._cas = cas
        self._responders = responders
        self._clock = clock

    def revoke(
        self,
        serial: str,
        reason: RevocationReason | str | int,
        *,
        actor: str,
        principal: Principal | None = None,
        invalidity_date: dt.datetime | None = None,
        issuer_ca_id: str | None = None,
    ) -> CertificateRecord:
        """Revoke a certificate of the inventory; return its record, now revoked.

        A ``principal`` needs the revoke scope, sees only its team's certificates (another
        team's is reported as not found) and must cover every name of the certificate with
        its patterns (see :mod:`certfleet.services.revocation_access`); a refusal raises
        Forbidden and changes nothing. Raises AlreadyRevoked, changing nothing, if the
        serial is already revoked.
        """
        outcome = self.revoke_serial(
            serial,
            reason,
            actor=actor,
            principal=principal,
            invalidity_date=invalidity_date,
            issuer_ca_id=issuer_ca_id,
            require_record=True,
        )
        assert outcome.record is not None
        return outcome.record

    def revoke_serial(
        self,
        serial: str,
        reason: RevocationReason | str | int,
        *,
        actor: str,
        principal: Principal | None = None,
        invalidity_date: dt.datetime | None = None,
        issuer_ca_id: str | None = None,
        certificate: x509.Certificate | None = None,
        require_record: bool = False,
    ) -> RevocationOutcome:
        """Revoke any serial one of our CAs signed: an inventory certificate, a serial that
        was reserved or signed but never recorded, or an intermediate CA (which then appears
        on its root's CRL). ``certificate`` (``--cert FILE``) must be that serial signed by
        one of our CAs; it is recorded in the inventory if it was missing.

        One transaction records the revocation on the serial and the certificate, writes the
        audit entry, drops cached OCSP responses and makes the CA's CRLs stale.
        """
        serial = normalize_serial(serial)
        reason = reason if isinstance(reason, RevocationReason) else RevocationReason.parse(reason)
        now = self._clock.now().replace(microsecond=0)
        if invalidity_date is not None:
            if invalidity_date.tzinfo is None:
                raise InvalidInput("invalidity date needs a time zone")
            if invalidity_date > now:
                raise InvalidInput(
                    "invalidity date is in the future (RFC 5280 5.3.2: when the key was compromised)"
                )
        if principal is not None:
            principal.require(Scope.REVOKE)
        index = self._cas.index(refresh=True)
        signed_by = self._verify_certificate(certificate, serial, index) if certificate is not None else None
        with self._uow() as uow:
            record = self._find_record(
                uow, serial, index, issuer_ca_id, principal, certificate, signed_by, now
            )
            if record is None:
                # The cached index reloads at most once a second: a CA made a moment ago (a
                # rotation or compromise in another process) may be missing from it.
                index = self._cas.fresh_index()
                record = self._find_record(
                    uow, serial, index, issuer_ca_id, principal, certificate, signed_by, now
                )
            if record is None and (require_record or principal is not None):
                raise NotFound(f"no certificate with serial {serial} in the inventory")
            if principal is not None and record is not None:
                authorize_revocation(principal, record)  # before anything is written
            status = uow.revocations.serial_status(serial)
            if status is not None and status.revocation is not None:
                raise AlreadyRevoked(f"certificate {serial} is already revoked", serial)
            ca_id, expires_at = self._issuer_of(
                uow, serial, record, status, signed_by, certificate, index, now
            )
            if issuer_ca_id is not None and ca_id != issuer_ca_id:
                raise NotFound(f"CA {issuer_ca_id} issued no certificate with serial {serial}")
            revocation = uow.revocations.add(
                Revocation(serial, ca_id, now, reason, expires_at, invalidity_date)
            )
            if record is not None:
                assert record.id is not None
                uow.revocations.mark_certificate_revoked(record.id, now, reason)
                record = dataclasses.replace(
                    record, status=Status.REVOKED, revoked_at=now, revocation_reason=reason.value
                )
            dropped = uow.revocations.invalidate_responses(serial)
            if any(r.serial == serial for r in uow.revocations.responders(ca_id)):
                # A revoked responder certificate: clients refuse every response it signed,
                # so none may be served again; the next request signs with a new responder.
                dropped += uow.revocations.invalidate_ca_responses(ca_id)
            key_hash = None
            if reason is RevocationReason.KEY_COMPROMISE:
                known = certificate or (record.certificate() if record is not None else None)
                if known is not None:
                    key_hash = spki_sha256(known.public_key())
                    uow.blocked_keys.block(key_hash, serial, now)
            AuditLog(uow.audit, self._clock).record(
                actor,
                "certificate.revoked",
                CertificateRef(
                    serial,
                    record.issuer
                    if record is not None
                    else self._cas.ca(ca_id).certificate.subject.rfc4514_string(),
                ).subject,
                {
                    "reason": reason.value,
                    "issuer_ca_id": ca_id,
                    "revoked_at": now.isoformat(),
                    "invalidity_date": invalidity_date.isoformat() if invalidity_date else None,
                    "fingerprint_sha256": record.fingerprint_sha256 if record else None,
                    "blocked_key_spki_sha256": key_hash,
                    "ocsp_responses_dropped": dropped,
                    "crl_revocation_seq": revocation.seq,
                },
            )
            # In this transaction: the event is committed with the revocation or not at all.
            details = {
                "reason": reason.value,
                "revoked_at": iso(now),
                "invalidity_date": iso(invalidity_date),
                "issuer_ca_id": ca_id,
                "actor": actor,
                "key_blocked": key_hash is not None,
            }
            key = f"revoked:{ca_id}:{serial}"
            emit(
                uow,
                certificate_event(uow, EventKind.REVOKED, record, now, details=details, dedup_key=key)
                if record is not None  # else an intermediate CA or a never-recorded serial
                else Event(EventKind.REVOKED, serial, now, details=details, dedup_key=key),
            )
        self._responders.forget()  # a responder certificate may be the one just revoked
        return RevocationOutcome(serial, ca_id, now, reason, invalidity_date, record, key_hash is not None)

    def _verify_certificate(
        self, certificate: x509.Certificate, serial: str, index: IssuerIndex[CaCertificate]
    ) -> CaCertificate:
        if serial_hex(certificate.serial_number) != serial:
            raise InvalidInput(
                f"the certificate's serial is {serial_hex(certificate.serial_number)}, not {serial}"
            )
        for ca in index.cas():
            if ca.certificate.subject != certificate.issuer or ca.certificate == certificate:
                continue
            try:
                certificate.verify_directly_issued_by(ca.certificate)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return ca
        raise InvalidInput("the certificate was not signed by any CA of this certfleet")

    @staticmethod
    def _find_record(
        uow: UnitOfWork,
        serial: str,
        index: IssuerIndex[CaCertificate],
        issuer_ca_id: str | None,
        principal: Principal | None,
        certificate: x509.Certificate | None,
        signed_by: CaCertificate | None,
        now: dt.datetime,
    ) -> CertificateRecord | None:
        # Only certificates one of our CAs issued: an imported copy of someone else's
        # certificate with the same serial is not ours to revoke.
        records = [
            r
            for r in uow.certificates.get_by_serial(serial)
            if r.issuer_ca_id is not None
            and index.get(r.issuer_ca_id) is not None
            and (issuer_ca_id is None or r.issuer_ca_id == issuer_ca_id)
        ]
        if certificate is not None and signed_by is not None:
            fingerprint = fingerprint_sha256(certificate)
            records = [r for r in records if r.fingerprint_sha256 == fingerprint]
            facts = CertificateFacts.of(certificate)
            if not records and not facts.is_ca:
                added = CertificateRecord.from_facts(
                    facts, source=Source.ISSUED, seen_at=now, issuer_ca_id=signed_by.id
                )
                records = [uow.certificates.add(added)]
        if principal is not None:
            records = [r for r in records if visible_to(principal, r)]
        return records[0] if records else None

    @staticmethod
    def _issuer_of(
        uow: UnitOfWork,
        serial: str,
        record: CertificateRecord | None,
        status: SerialStatus | None,
        signed_by: CaCertificate | None,
        certificate: x509.Certificate | None,
        index: IssuerIndex[CaCertificate],
        now: dt.datetime,
    ) -> tuple[str, dt.datetime]:
        """The issuing CA and when the certificate expires; puts CA certificates and
        ``--cert`` certificates on the serials table first (a revocation references it)."""
        serial_number = int(serial, 16)
        if record is not None and record.issuer_ca_id is not None:
            if status is None:
                uow.revocations.record_serial(serial, record.issuer_ca_id, now, record.fingerprint_sha256)
            return record.issuer_ca_id, record.not_after
        for ca in index.cas():
            if ca.certificate.serial_number == serial_number and (
                status is None or status.issuer_ca_id == ca.parent_id
            ):
                if ca.parent_id is None or ca.parent_id == ca.id:
                    raise InvalidInput(
                        f"serial {serial} is the self-signed root {ca.id}: a root cannot be revoked, "
                        "remove it from the trust stores instead"
                    )
                uow.revocations.record_serial(serial, ca.parent_id, now, fingerprint_sha256(ca.certificate))
                return ca.parent_id, ca.not_after
        if status is not None:
            if certificate is not None:
                return status.issuer_ca_id, certificate.not_valid_after_utc
            return status.issuer_ca_id, status.reserved_at + _UNRECORDED_LIFETIME
        if signed_by is not None and certificate is not None:
            uow.revocations.record_serial(serial, signed_by.id, now, fingerprint_sha256(certificate))
            return signed_by.id, certificate.not_valid_after_utc
        raise NotFound(f"no certificate or serial {serial} issued by this certfleet")

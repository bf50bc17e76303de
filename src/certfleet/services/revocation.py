"""Revocation: one service behind the CLI, the REST API and ACME revokeCert, plus the CRLs
and OCSP responses that publish what it records."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.access import Principal, Scope
from certfleet.audit import AuditLog, CertificateRef
from certfleet.ca import PROFILES, CaCertificate, new_serial_number
from certfleet.ca.keys import KeyBackend
from certfleet.clock import Clock
from certfleet.errors import CertfleetError, Conflict, InvalidInput, NotFound
from certfleet.inventory import CertificateRecord, Source, Status, iso
from certfleet.revocation import (
    AlreadyRevoked,
    CrlKind,
    CrlPublisher,
    IssuerIndex,
    OcspResponder,
    Published,
    ResponseSigner,
    Revocation,
    RevocationReason,
    RevocationSettings,
    RevocationStore,
    SerialStatus,
    StoredResponder,
    build_responder_certificate,
    rotation_due,
    spki_sha256,
)
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services.notifications import Event, EventKind, certificate_event, emit
from certfleet.services.revocation_access import authorize_revocation, visible_to
from certfleet.x509 import CertificateFacts, KeyType, describe_public_key, fingerprint_sha256, serial_hex

__all__ = [
    "AlreadyRevoked",
    "MaintenanceReport",
    "Published",
    "RevocationOutcome",
    "RevocationService",
]

# A serial reserved but never recorded belongs to a certificate that cannot outlive the
# longest profile; a day of slack covers the moments between reserving and signing.
_UNRECORDED_LIFETIME = max(p.max_validity for p in PROFILES.values()) + dt.timedelta(days=1)
_INDEX_TTL_SECONDS = 30.0
_SIGNER_TTL_SECONDS = 60.0


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


@dataclass
class MaintenanceReport:
    """One maintenance round: what was refreshed, and one line per CA that failed."""

    crls_built: int = 0
    responses_signed: int = 0
    errors: list[str] = field(default_factory=list)


def normalize_serial(serial: str) -> str:
    """Hex in the inventory's form (lowercase, no colons, no leading zeros)."""
    text = serial.strip().lower().replace(":", "").removeprefix("0x")
    if not text or len(text) > 40 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput(f"bad serial {serial!r}: expected up to 40 hex digits")
    return text.lstrip("0") or "0"


class RevocationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: RevocationStore,
        keys: KeyBackend,
        hierarchy: Callable[[], Sequence[CaCertificate]],
        base_url: str,
        settings: RevocationSettings,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._store = store
        self._keys = keys
        self._hierarchy = hierarchy
        self._base_url = base_url
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._signer_lock = threading.Lock()  # one responder certificate made at a time
        self._index_cache: tuple[float, IssuerIndex[CaCertificate]] | None = None
        self._ca_keys: dict[str, CertificateIssuerPrivateKeyTypes] = {}
        self._signers: dict[str, tuple[float, ResponseSigner]] = {}
        self._publisher: CrlPublisher[CaCertificate] = CrlPublisher(
            store, self._ca_key, base_url, settings, clock
        )
        self._responder: OcspResponder[CaCertificate] = OcspResponder(
            store, lambda refresh: self._index(refresh=refresh), self._signer, settings, clock
        )

    # -- revoking ---------------------------------------------------------------------------

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
        index = self._index(refresh=True)
        signed_by = self._verify_certificate(certificate, serial, index) if certificate is not None else None
        with self._uow() as uow:
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
                    else next(c.certificate.subject.rfc4514_string() for c in index.cas() if c.id == ca_id),
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
        with self._signer_lock:
            self._signers.clear()  # a responder certificate may be the one just revoked
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

    # -- publishing -------------------------------------------------------------------------

    def crl(self, ca_id: str, kind: CrlKind = CrlKind.FULL) -> Published:
        """The CA's current complete (or delta) CRL, rebuilt first when a revocation made it
        stale or it is due, so the CRL served right after a revocation already lists it."""
        return self._publisher.current(self._ca(ca_id), kind)

    def ocsp(self, request_der: bytes) -> Published:
        """A DER OCSPResponse for a DER OCSPRequest (see :class:`OcspResponder` for the
        answers to unknown serials, foreign issuers and malformed requests)."""
        return self._responder.respond(request_der)

    def _signer(self, ca: CaCertificate) -> ResponseSigner:
        if not self.settings.delegated:
            return ResponseSigner(ca.id, ca.certificate, self._ca_key(ca), delegated=False)
        now = self._clock.now()
        with self._signer_lock:
            cached = self._signers.get(ca.id)
            if (
                cached is not None
                and time.monotonic() - cached[0] < _SIGNER_TTL_SECONDS
                and not rotation_due(cached[1].certificate, now, self.settings.ocsp_validity)
            ):
                return cached[1]
            signer = self._current_responder(ca, now)
            self._signers[ca.id] = (time.monotonic(), signer)
            return signer

    def _current_responder(self, ca: CaCertificate, now: dt.datetime) -> ResponseSigner:
        """The newest usable responder certificate of ``ca``, made when none is (first use,
        rotation due, or revoked). Its key is created by the CA key backend, so it is
        encrypted at rest like the CA keys."""
        with self._uow() as uow:
            for responder in uow.revocations.responders(ca.id):
                status = uow.revocations.serial_status(responder.serial)
                revoked = status is not None and status.revocation is not None
                if not revoked and not rotation_due(responder.certificate, now, self.settings.ocsp_validity):
                    return ResponseSigner(
                        ca.id, responder.certificate, self._keys.load(responder.key_ref), True
                    )
        ca_key = self._ca_key(ca)
        key_type = KeyType.EC_P256  # a safe responder key whatever the CA's key is
        with contextlib.suppress(CertfleetError):
            key_type = KeyType.parse(describe_public_key(ca.certificate.public_key()).label)
        key_ref = self._keys.create(f"ocsp-{ca.id}", key_type)
        key = self._keys.load(key_ref)
        serial_number = self._reserve_serial(ca.id, now)
        certificate = build_responder_certificate(
            ca=ca,
            ca_key=ca_key,
            public_key=key.public_key(),
            serial_number=serial_number,
            now=now,
            lifetime=self.settings.responder_lifetime,
        )
        with self._uow() as uow:
            uow.serials.mark_issued(serial_hex(serial_number), fingerprint_sha256(certificate))
            uow.revocations.add_responder(StoredResponder(ca.id, key_ref, certificate, now))
            AuditLog(uow.audit, self._clock).record(
                "system:revocation",
                "ocsp.responder_created",
                CertificateRef.of(certificate).subject,
                {"ca_id": ca.id, "not_after": certificate.not_valid_after_utc.isoformat()},
            )
        return ResponseSigner(ca.id, certificate, key, True)

    def _reserve_serial(self, ca_id: str, now: dt.datetime) -> int:
        for _ in range(3):
            serial_number = new_serial_number()
            try:
                with self._uow() as uow:
                    uow.serials.reserve(serial_hex(serial_number), ca_id, now)
            except Conflict:
                continue
            return serial_number
        raise Conflict("could not reserve a unique serial number")

    # -- maintenance ------------------------------------------------------------------------

    def maintain(self) -> MaintenanceReport:
        """One round of the schedule ``certfleet serve`` runs: rebuild stale CRLs, rotate
        responder certificates, pre-sign missing responses and refresh ageing ones. A
        failing CA is reported and never stops the others."""
        report = MaintenanceReport()
        now = self._clock.now()
        for ca in self._index(refresh=True).cas():
            try:
                for kind in (CrlKind.FULL, CrlKind.DELTA):
                    before = self._store.crl(ca.id, kind)[0]
                    if self._publisher.current(ca, kind).number != (before.number if before else None):
                        report.crls_built += 1
                self._retire_responders(ca, now)
                report.responses_signed += self._responder.presign(ca, now)
            except CertfleetError as exc:
                report.errors.append(f"CA {ca.id}: {exc.detail}")
        return report

    def _retire_responders(self, ca: CaCertificate, now: dt.datetime) -> None:
        if self.settings.delegated:
            self._signer(ca)  # creates the first one, or the next when rotation is due
        with self._uow() as uow:
            expired = [
                r for r in uow.revocations.responders(ca.id) if r.certificate.not_valid_after_utc <= now
            ]
            for responder in expired:
                uow.revocations.drop_responder(responder.key_ref)
        delete = getattr(self._keys, "delete", None)
        for responder in expired:
            if delete is not None:
                delete(responder.key_ref)  # no response it signed is still valid

    # -- shared -----------------------------------------------------------------------------

    def _index(self, *, refresh: bool = False) -> IssuerIndex[CaCertificate]:
        with self._lock:
            cached = self._index_cache
        if cached is not None and not refresh and time.monotonic() - cached[0] < _INDEX_TTL_SECONDS:
            return cached[1]
        if cached is not None and refresh and time.monotonic() - cached[0] < 1.0:
            return cached[1]  # at most one reload a second, however many unknown issuers arrive
        index = IssuerIndex(self._hierarchy())
        with self._lock:
            self._index_cache = (time.monotonic(), index)
        return index

    def _ca(self, ca_id: str) -> CaCertificate:
        ca = self._index().get(ca_id) or self._index(refresh=True).get(ca_id)
        if ca is None:
            raise NotFound(f"no CA {ca_id!r}")
        return ca

    def _ca_key(self, ca: CaCertificate) -> CertificateIssuerPrivateKeyTypes:
        with self._lock:
            key = self._ca_keys.get(ca.key_ref)
        if key is None:
            key = self._keys.load(ca.key_ref)
            with self._lock:
                self._ca_keys[ca.key_ref] = key
        return key

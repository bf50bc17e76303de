"""OCSP response signers: the CA itself, or its current delegated responder certificate."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time

from certfleet.audit import AuditLog, CertificateRef
from certfleet.ca import CaCertificate, new_serial_number
from certfleet.ca.keys import KeyBackend
from certfleet.clock import Clock
from certfleet.errors import CertfleetError, Conflict
from certfleet.revocation import (
    ResponseSigner,
    RevocationSettings,
    StoredResponder,
    build_responder_certificate,
    rotation_due,
)
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.services._revocation_cas import CaDirectory
from certfleet.x509 import KeyType, describe_public_key, fingerprint_sha256, serial_hex

__all__ = ["ResponderCertificates"]

_SIGNER_TTL_SECONDS = 60.0


class ResponderCertificates:
    """Delegated OCSP responder certificates (RFC 6960 section 4.2.2.2): made by the CA when
    none is usable, rotated before they end, retired (key deleted) once expired."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        keys: KeyBackend,
        cas: CaDirectory,
        settings: RevocationSettings,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._keys = keys
        self._cas = cas
        self._settings = settings
        self._clock = clock
        self._signer_lock = threading.Lock()  # one responder certificate made at a time
        self._signers: dict[str, tuple[float, ResponseSigner]] = {}

    def forget(self) -> None:
        """Drop the cached signers: a responder certificate may be the one just revoked."""
        with self._signer_lock:
            self._signers.clear()

    def signer(self, ca: CaCertificate) -> ResponseSigner:
        if not self._settings.delegated:
            return ResponseSigner(ca.id, ca.certificate, self._cas.key(ca), delegated=False)
        now = self._clock.now()
        with self._signer_lock:
            cached = self._signers.get(ca.id)
            if (
                cached is not None
                and time.monotonic() - cached[0] < _SIGNER_TTL_SECONDS
                and not rotation_due(cached[1].certificate, now, self._settings.ocsp_validity)
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
                if not revoked and not rotation_due(responder.certificate, now, self._settings.ocsp_validity):
                    return ResponseSigner(
                        ca.id, responder.certificate, self._keys.load(responder.key_ref), True
                    )
        ca_key = self._cas.key(ca)
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
            lifetime=self._settings.responder_lifetime,
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

    def retire(self, ca: CaCertificate, now: dt.datetime) -> None:
        if self._settings.delegated:
            self.signer(ca)  # creates the first one, or the next when rotation is due
        # Read first: this runs every maintenance round (2 s) and nearly always finds nothing,
        # so it takes no write lock (on SQLite, the one writer every request queues for).
        with self._uow(read_only=True) as uow:
            expired = [
                r for r in uow.revocations.responders(ca.id) if r.certificate.not_valid_after_utc <= now
            ]
        if expired:
            with self._uow() as uow:
                for responder in expired:
                    uow.revocations.drop_responder(responder.key_ref)
        delete = getattr(self._keys, "delete", None)
        for responder in expired:
            if delete is not None:
                delete(responder.key_ref)  # no response it signed is still valid

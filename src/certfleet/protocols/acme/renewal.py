"""ARI endpoints and operations (RFC 9773): ``renewalInfo/{certID}``, the ``replaces`` field
of newOrder, and the operator's "renew now" for one certificate or a selection."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from certfleet.audit import AuditLog, CertificateRef
from certfleet.clock import Clock
from certfleet.errors import NotFound
from certfleet.inventory import CertificateQuery, CertificateRecord, Status
from certfleet.protocols.acme._ports import AcmeUnitOfWorkFactory
from certfleet.protocols.acme.accounts import Account
from certfleet.protocols.acme.ari import (
    OVERRIDE_SPAN,
    CertId,
    RenewalOverride,
    RenewalWindow,
    default_window,
    window_json,
)
from certfleet.protocols.acme.identifiers import Identifier
from certfleet.protocols.acme.orders import OrderStatus
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.responses import AcmeResponse
from certfleet.x509 import serial_hex

__all__ = ["RenewNowOutcome", "RenewalInfo"]

_PAGE = 1000


@dataclass(frozen=True)
class RenewNowOutcome:
    """One result per certificate: a bad serial never aborts a fleet-wide run."""

    serial: str
    ok: bool
    detail: str


def _key_identifier(record: CertificateRecord) -> bytes | None:
    try:
        cert = x509.load_der_x509_certificate(record.der)
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except (ValueError, x509.ExtensionNotFound):
        return None


class RenewalInfo:
    def __init__(self, uow: AcmeUnitOfWorkFactory, clock: Clock, retry_after: dt.timedelta) -> None:
        self._uow = uow
        self._clock = clock
        self._retry_after = retry_after

    def _find(self, cert_id: CertId) -> CertificateRecord | None:
        with self._uow(read_only=True) as uow:
            records = uow.certificates.get_by_serial(serial_hex(cert_id.serial_number))
        for record in records:
            if record.issuer_ca_id is not None and _key_identifier(record) == cert_id.key_identifier:
                return record
        return None

    def window_for(self, record: CertificateRecord) -> RenewalWindow:
        now = self._clock.now()
        if record.status is Status.REVOKED:
            # RFC 9773 4.2: a window wholly in the past makes clients renew at once.
            return RenewalWindow(now - 2 * OVERRIDE_SPAN, now - OVERRIDE_SPAN)
        with self._uow(read_only=True) as uow:
            override = uow.acme.renewals.get_override(record.serial)
        if override is not None:
            return override.window()
        return default_window(record.not_before, record.not_after)

    def get(self, cert_id_text: str) -> AcmeResponse:
        record = self._find(CertId.parse(cert_id_text))
        if record is None:
            raise AcmeProblem("notFound", "this server issued no certificate with that identifier")
        response = AcmeResponse.json(window_json(self.window_for(record)))
        response.headers["Retry-After"] = str(int(self._retry_after.total_seconds()))
        return response

    def check_replaces(self, value: object, account: Account, identifiers: Sequence[Identifier]) -> str:
        """RFC 9773 section 5: the replaced certificate must be this account's, share an
        identifier with the new order, and not be replaced already by a live order."""
        if not isinstance(value, str):
            raise AcmeProblem("malformed", "replaces must be a certificate identifier string")
        cert_id = CertId.parse(value)
        record = self._find(cert_id)
        if record is None:
            raise AcmeProblem("malformed", "replaces names a certificate this server did not issue")
        with self._uow() as uow:
            issued_by = uow.acme.orders.find_by_certificate(record.serial)
            replacing = uow.acme.orders.replacing(str(cert_id))
        if issued_by is None or issued_by.account_id != account.id:
            raise AcmeProblem("unauthorized", "replaces names a certificate of another account")
        if not {i.value for i in identifiers} & set(record.sans):
            raise AcmeProblem("malformed", "the replaced certificate shares no identifier with this order")
        if any(o.status is not OrderStatus.INVALID for o in replacing):
            raise AcmeProblem("alreadyReplaced", "another order already replaces this certificate")
        return str(cert_id)

    def renew_now(self, serials: Sequence[str], *, actor: str) -> list[RenewNowOutcome]:
        """Move each certificate's window to now: ARI clients renew at their next check."""
        outcomes: list[RenewNowOutcome] = []
        for raw in serials:
            serial = raw.strip().lower().replace(":", "").lstrip("0") or "0"
            with self._uow() as uow:
                records = [r for r in uow.certificates.get_by_serial(serial) if r.issuer_ca_id is not None]
            if not records:
                outcomes.append(
                    RenewNowOutcome(raw, False, "no certificate issued by certfleet has this serial")
                )
                continue
            outcomes.append(self._override(records[0], actor))
        return outcomes

    def renew_now_matching(self, query: CertificateQuery, *, actor: str) -> list[RenewNowOutcome]:
        outcomes: list[RenewNowOutcome] = []
        after: int | None = None
        while True:
            page_query = CertificateQuery(**{**query.__dict__, "limit": _PAGE, "after_id": after})
            with self._uow() as uow:
                page = uow.certificates.query(page_query, self._clock.now())
            for record in page:
                if record.issuer_ca_id is not None and record.status is Status.ACTIVE:
                    outcomes.append(self._override(record, actor))
            if len(page) < _PAGE:
                return outcomes
            after = page[-1].id

    def overrides(self) -> list[RenewalOverride]:
        with self._uow(read_only=True) as uow:
            return list(uow.acme.renewals.overrides())

    def clear_override(self, serial: str, *, actor: str) -> RenewalOverride:
        """Undo a "renew now": the certificate's window is the default one again."""
        wanted = serial.strip().lower().replace(":", "").lstrip("0") or "0"
        with self._uow() as uow:
            override = uow.acme.renewals.get_override(wanted)
            if override is None or not uow.acme.renewals.clear_override(wanted):
                raise NotFound(f"no renewal override for serial {serial!r}")
            records = uow.certificates.get_by_serial(wanted)
            subject = CertificateRef(wanted, records[0].issuer).subject if records else wanted
            AuditLog(uow.audit, self._clock).record(actor, "acme.renewal.override_cleared", subject, {})
        return override

    def _override(self, record: CertificateRecord, actor: str) -> RenewNowOutcome:
        now = self._clock.now()
        if record.status is not Status.ACTIVE:
            return RenewNowOutcome(record.serial, False, f"certificate is {record.status.value}")
        if record.not_after <= now:
            return RenewNowOutcome(record.serial, False, "certificate has expired")
        override = RenewalOverride(record.serial, now - OVERRIDE_SPAN, now, now, actor)
        with self._uow() as uow:
            uow.acme.renewals.set_override(override)
            AuditLog(uow.audit, self._clock).record(
                actor,
                "acme.renewal.override",
                CertificateRef(record.serial, record.issuer).subject,
                {"window_start": now.isoformat()},
            )
        return RenewNowOutcome(record.serial, True, "renewal window moved to now")

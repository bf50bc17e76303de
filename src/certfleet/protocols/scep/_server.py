"""The SCEP protocol state machine (RFC 8894 section 3): bytes in, bytes out, no web
framework. It declares the narrow :class:`ScepBackend` it needs; the service layer owns
challenges, transactions and issuance."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from certfleet.clock import Clock
from certfleet.protocols.scep._attributes import MessageType, PkiStatus
from certfleet.protocols.scep._envelope import certificates_only, crl_only, open_envelope, seal_envelope
from certfleet.protocols.scep._reply import RaSigner, cert_rep, signed_content
from certfleet.protocols.scep._request import PkiRequest, parse_pki_message
from certfleet.protocols.scep.errors import FailInfo, MalformedMessage, ScepFailure

__all__ = ["CAPABILITIES", "Enrolment", "ScepBackend", "ScepServer"]

_log = logging.getLogger("certfleet.scep")

# RFC 8894 section 3.5.2. SCEPStandard promises AES, POSTPKIOperation and SHA-256 together.
CAPABILITIES = ("AES", "GetNextCACert", "POSTPKIOperation", "Renewal", "SCEPStandard", "SHA-256", "SHA-512")
# RFC 8894 leaves "sufficiently close" to the server: a day tolerates devices that enrol
# before their clock is set by NTP in the wrong time zone, and still refuses stale replays.
DEFAULT_MAX_SKEW = dt.timedelta(days=1)
_CAPABILITIES = "".join(f"{cap}\n" for cap in CAPABILITIES).encode()


@dataclass(frozen=True)
class Enrolment:
    """Where a transaction stands: SUCCESS with the certificate first, then its chain;
    PENDING; or FAILURE with its failInfo."""

    status: PkiStatus
    certificates: tuple[x509.Certificate, ...] = ()
    fail_info: FailInfo | None = None
    detail: str = field(default="", compare=False)


class ScepBackend(Protocol):
    def signer(self) -> RaSigner:
        """The RA that decrypts requests and signs replies, with the CA chain."""
        ...

    def loaded_signer(self) -> RaSigner | None:
        """``signer()`` if this process holds it already, else None (no file, no database:
        callable from an event loop)."""
        ...

    def enrol(
        self,
        csr: x509.CertificateSigningRequest,
        transaction_id: str,
        signer: x509.Certificate,
        *,
        renewal: bool,
    ) -> Enrolment:
        """PKCSReq or RenewalReq; a transaction ID seen before answers with its first result."""
        ...

    def poll(self, transaction_id: str, signer: x509.Certificate) -> Enrolment | None: ...

    def certificate(self, issuer: x509.Name, serial_number: int) -> x509.Certificate | None: ...

    def crl(self, issuer: x509.Name, serial_number: int) -> bytes | None:
        """The DER CRL that covers this certificate."""
        ...


def _issuer_and_serial(plaintext: bytes) -> tuple[x509.Name, int]:
    """GetCert and GetCRL carry an IssuerAndSerialNumber (RFC 8894 sections 3.3.4, 3.3.5)."""
    try:
        value = cms.IssuerAndSerialNumber.load(plaintext, strict=True)
        return _name_from_der(value["issuer"].dump()), int(value["serial_number"].native)
    except (ValueError, TypeError, KeyError) as exc:
        raise ScepFailure(FailInfo.BAD_REQUEST, f"not an IssuerAndSerialNumber: {exc}") from None


def _name_from_der(der: bytes) -> x509.Name:
    # cryptography parses a Name only inside a certificate or CSR; asn1crypto keeps the bytes.
    parsed = asn1_x509.Name.load(der)
    return x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(x509.ObjectIdentifier(a["type"].dotted), str(a["value"].native))
                    for a in rdn
                ]
            )
            for rdn in parsed.chosen
        ]
    )


def _outcome(request: PkiRequest | None, enrolment: Enrolment) -> str:
    """The ``outcome`` label of ``certfleet_enrolments_total`` (shared with EST): issued,
    pending, a failInfo name; ``answered`` for GetCert and GetCRL."""
    if enrolment.fail_info is not None:
        return enrolment.fail_info.label
    if enrolment.status is PkiStatus.PENDING:
        return "pending"
    enrolling = request is not None and request.message_type in (
        MessageType.PKCS_REQ,
        MessageType.RENEWAL_REQ,
        MessageType.CERT_POLL,
    )
    return "issued" if enrolling else "answered"


class ScepServer:
    """GetCACaps, GetCACert, GetNextCACert and PKIOperation. ``observe(message, outcome)``
    counts each PKIOperation (``outcome``: success, pending, a failInfo name, malformed)."""

    def __init__(
        self,
        backend: ScepBackend,
        clock: Clock,
        *,
        observe: Callable[[str, str], None] = lambda message, outcome: None,
        max_skew: dt.timedelta = DEFAULT_MAX_SKEW,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._observe = observe
        self._max_skew = max_skew
        self._ca_certificates: tuple[RaSigner, bytes] | None = None

    @staticmethod
    def capabilities() -> bytes:
        return _CAPABILITIES

    def ca_certificates(self) -> bytes:
        """GetCACert with an RA (RFC 8894 section 4.2.1.2): the RA and CA certificates as a
        degenerate PKCS#7, ``application/x-x509-ca-ra-cert``."""
        return self._ca_certificates_of(self._backend.signer())

    def loaded_ca_certificates(self) -> bytes | None:
        """GetCACert if the RA is loaded in this process (no file, no database, no signature:
        an HTTP server answers it on its event loop), else None."""
        signer = self._backend.loaded_signer()
        return None if signer is None else self._ca_certificates_of(signer)

    def _ca_certificates_of(self, signer: RaSigner) -> bytes:
        cached = self._ca_certificates  # encoded once per RA, not on every enrolment
        if cached is None or cached[0] is not signer:
            cached = self._ca_certificates = (signer, certificates_only(list(signer.chain)))
        return cached[1]

    def next_ca_certificates(self) -> bytes:
        """GetNextCACert (RFC 8894 section 4.7): the certificates clients should use next,
        signed by the current RA; with no rollover scheduled, the current ones."""
        signer = self._backend.signer()
        return signed_content(signer, certificates_only(list(signer.chain)), self._clock.now())

    def pki_operation(self, message: bytes) -> bytes:
        """A CertRep for ``message``. Raises ``MalformedMessage`` (HTTP 400) only when the
        message names no transaction to answer."""
        try:
            parsed = parse_pki_message(message)
        except MalformedMessage:
            self._observe("unknown", "malformed")
            raise
        signer = self._backend.signer()
        now = self._clock.now()
        kind = parsed.request.message_type.name if parsed.request else "unknown"
        try:
            if parsed.failure is not None:
                raise parsed.failure
            assert parsed.request is not None
            enrolment, content = self._answer(parsed.request, signer, now)
        except ScepFailure as failure:
            _log.info(
                "SCEP %s %s refused: %s: %s",
                kind,
                parsed.reply_to.transaction_id,
                failure.fail_info.label,
                failure.detail,
            )
            self._observe(kind, failure.fail_info.label)
            return cert_rep(signer, parsed.reply_to, PkiStatus.FAILURE, now, fail_info=failure.fail_info)
        self._observe(kind, _outcome(parsed.request, enrolment))
        envelope = None
        if enrolment.status is PkiStatus.SUCCESS:
            envelope = seal_envelope(content, parsed.reply_to.signer)
        return cert_rep(
            signer, parsed.reply_to, enrolment.status, now, envelope=envelope, fail_info=enrolment.fail_info
        )

    def _answer(self, request: PkiRequest, signer: RaSigner, now: dt.datetime) -> tuple[Enrolment, bytes]:
        if request.signing_time is not None and abs(now - request.signing_time) > self._max_skew:
            raise ScepFailure(
                FailInfo.BAD_TIME, f"signingTime {request.signing_time.isoformat()} is too far off"
            )
        plaintext = open_envelope(request.envelope, signer.certificate, signer.key)
        kind = request.message_type
        if kind in (MessageType.PKCS_REQ, MessageType.RENEWAL_REQ):
            enrolment = self._enrol(request, plaintext)
        elif kind is MessageType.CERT_POLL:
            found = self._backend.poll(request.transaction_id, request.signer)
            if found is None:
                raise ScepFailure(FailInfo.BAD_CERT_ID, f"no transaction {request.transaction_id!r}")
            enrolment = found
        elif kind is MessageType.GET_CERT:
            certificate = self._backend.certificate(*_issuer_and_serial(plaintext))
            if certificate is None:
                raise ScepFailure(FailInfo.BAD_CERT_ID, "no such certificate")
            enrolment = Enrolment(PkiStatus.SUCCESS, (certificate,))
        else:  # GetCRL
            crl = self._backend.crl(*_issuer_and_serial(plaintext))
            if crl is None:
                raise ScepFailure(FailInfo.BAD_CERT_ID, "no CRL for that certificate's issuer")
            return Enrolment(PkiStatus.SUCCESS), crl_only(crl)
        # The issued certificate alone: a degenerate SignedData's certificates are a DER SET,
        # sorted by encoding, and clients (micromdm's scepclient) take the first one.
        content = certificates_only(list(enrolment.certificates[:1])) if enrolment.certificates else b""
        return enrolment, content

    def _enrol(self, request: PkiRequest, plaintext: bytes) -> Enrolment:
        try:
            csr = x509.load_der_x509_csr(plaintext)
        except ValueError:
            raise ScepFailure(FailInfo.BAD_REQUEST, "the envelope does not hold a PKCS#10 request") from None
        if not csr.is_signature_valid:
            raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "the PKCS#10 signature does not verify")
        renewal = request.message_type is MessageType.RENEWAL_REQ
        self_signed = request.signer.issuer == request.signer.subject
        if not renewal and self_signed and csr.public_key() != request.signer.public_key():
            # RFC 8894 section 2.3: a PKCSReq is signed by a self-signed certificate of the
            # key being certified, proving possession of it to the RA. (One signed by an
            # issued certificate is a renewal the older way: the service decides.)
            raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "the signer's key is not the key in the request")
        return self._backend.enrol(csr, request.transaction_id, request.signer, renewal=renewal)

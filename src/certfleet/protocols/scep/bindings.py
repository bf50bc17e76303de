"""The adapter from :class:`ScepBackend` to certfleet's SCEP service and RA: the only part of
the SCEP package that knows the services, as ``protocols.acme.bindings`` for ACME. It maps
each refusal to its RFC 8894 failInfo."""

from __future__ import annotations

from cryptography import x509

from certfleet.access.scep import EnrolmentRefused, Refusal, ScepTransaction, TransactionStatus
from certfleet.protocols.scep._attributes import PkiStatus
from certfleet.protocols.scep._reply import RaSigner
from certfleet.protocols.scep._server import Enrolment
from certfleet.protocols.scep.errors import FailInfo, ScepFailure
from certfleet.services._scep_ra import RaMaterial, RegistrationAuthority
from certfleet.services.scep import ScepService
from certfleet.x509 import load_certificates

__all__ = ["ServiceBackend"]

# RFC 8894 section 3.2.1.4.5 has five reasons; a refused challenge, a name the challenge does
# not allow and a policy refusal are all "transaction not permitted" (badRequest); a renewal
# signed by a certificate this CA does not know (or revoked) identifies no certificate
# (badCertId).
_FAIL_INFO = {
    Refusal.CHALLENGE: FailInfo.BAD_REQUEST,
    Refusal.NAMES: FailInfo.BAD_REQUEST,
    Refusal.POLICY: FailInfo.BAD_REQUEST,
    Refusal.REJECTED: FailInfo.BAD_REQUEST,
    Refusal.UNKNOWN_CERTIFICATE: FailInfo.BAD_CERT_ID,
}


def _enrolment(transaction: ScepTransaction) -> Enrolment:
    if transaction.status is TransactionStatus.ISSUED and transaction.chain_pem:
        return Enrolment(PkiStatus.SUCCESS, tuple(load_certificates(transaction.chain_pem.encode())))
    if transaction.status is TransactionStatus.REJECTED:
        return Enrolment(PkiStatus.FAILURE, fail_info=FailInfo.BAD_REQUEST, detail="rejected by an operator")
    # PENDING, or ISSUING: another request of the same transaction is being answered now.
    return Enrolment(PkiStatus.PENDING)


class ServiceBackend:
    def __init__(self, service: ScepService, ra: RegistrationAuthority) -> None:
        self._service = service
        self._ra = ra
        self._signer: tuple[RaMaterial, RaSigner] | None = None

    def signer(self) -> RaSigner:
        return self._signer_of(self._ra.current())

    def loaded_signer(self) -> RaSigner | None:
        material = self._ra.loaded()
        return None if material is None else self._signer_of(material)

    def _signer_of(self, material: RaMaterial) -> RaSigner:
        cached = self._signer
        if cached is None or cached[0] is not material:
            cached = self._signer = (material, RaSigner(material.certificate, material.key, material.chain))
        return cached[1]

    def enrol(
        self,
        csr: x509.CertificateSigningRequest,
        transaction_id: str,
        signer: x509.Certificate,
        *,
        renewal: bool,
    ) -> Enrolment:
        try:
            return _enrolment(self._service.enrol(csr, transaction_id, signer, renewal=renewal))
        except EnrolmentRefused as refused:
            raise ScepFailure(_FAIL_INFO[refused.refusal], refused.detail) from None

    def poll(self, transaction_id: str, signer: x509.Certificate) -> Enrolment | None:
        transaction = self._service.poll(transaction_id, signer)
        return None if transaction is None else _enrolment(transaction)

    def certificate(self, issuer: x509.Name, serial_number: int) -> x509.Certificate | None:
        return self._service.certificate(issuer, serial_number)

    def crl(self, issuer: x509.Name, serial_number: int) -> bytes | None:
        return self._service.crl(issuer, serial_number)

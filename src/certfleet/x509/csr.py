"""Parsing and checking certificate signing requests."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from certfleet.x509._der import ec_parameters_tag, spki_of_request_info
from certfleet.x509.errors import BadKey, MalformedInput
from certfleet.x509.names import names_from_extension

__all__ = ["csr_public_key", "load_csr", "names_from_csr"]

_NAMED_CURVE = 0x06  # DER tag of the namedCurve OBJECT IDENTIFIER


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Parse a PEM or DER CSR and verify its self-signature. Raises MalformedInput."""
    try:
        csr = x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise MalformedInput(f"malformed CSR: {exc}") from exc
    # Load the key before verifying: an unsupported key (explicit EC parameters, an odd
    # curve) is the more precise reason to give than "signature does not verify".
    csr_public_key(csr)
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedInput(f"CSR signature cannot be checked: {exc}") from exc
    if not valid:
        raise MalformedInput("CSR signature does not verify")
    return csr


def csr_public_key(csr: x509.CertificateSigningRequest) -> CertificatePublicKeyTypes:
    """The CSR's public key; EC keys must name their curve (RFC 5480 section 2.1.1)."""
    try:
        parameters = ec_parameters_tag(spki_of_request_info(csr.tbs_certrequest_bytes))
    except ValueError as exc:
        raise MalformedInput(f"malformed CSR: {exc}") from exc
    if parameters is not None and parameters != _NAMED_CURVE:
        # cryptography maps explicit parameters of a known curve back to its name, so this
        # is the only place the refusal can be made.
        raise BadKey("EC keys with explicit (or implicit) curve parameters are not supported: name the curve")
    try:
        return csr.public_key()
    except ValueError as exc:
        text = str(exc)
        if "explicit" in text.lower():
            raise BadKey("EC keys with explicit curve parameters are not supported") from exc
        raise BadKey(f"CSR public key is not supported: {text}") from exc
    except UnsupportedAlgorithm as exc:
        raise BadKey(f"CSR public key algorithm is not supported: {exc}") from exc


def names_from_csr(csr: x509.CertificateSigningRequest) -> tuple[str | None, list[str]]:
    """The common name and the DNS/IP SANs a CSR asks for."""
    cns = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    cn = cns[0].value if cns else None
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = names_from_extension(san)
    except x509.ExtensionNotFound:
        names = []
    return (cn if isinstance(cn, str) else None), names

"""Parsing and checking certificate signing requests."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from certfleet.x509 import der
from certfleet.x509.errors import BadKey, MalformedInput
from certfleet.x509.names import names_from_extension

__all__ = ["csr_public_key", "load_csr", "names_from_csr"]

_NAMED_CURVE = 0x06  # DER tag of the namedCurve OBJECT IDENTIFIER
# DER of the OBJECT IDENTIFIER id-ecPublicKey, 1.2.840.10045.2.1 (RFC 5480 section 2.1.1).
_ID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")


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


# cryptography turns an EC public key with explicit curve parameters that match a named
# curve into that named curve, so the parsed key can no longer tell how the requester
# encoded it. RFC 5480 section 2.1.1 says the parameters MUST be a namedCurve in PKIX; the
# encoding is checked on the raw SubjectPublicKeyInfo with the minimal reader in x509.der.


def spki_of_request_info(request_info: bytes) -> bytes:
    """The SubjectPublicKeyInfo inside a CertificationRequestInfo (RFC 2986 section 4.1:
    version, subject, subjectPKInfo, attributes)."""
    outer = der.read_element(request_info)
    if outer.tag != der.SEQUENCE:
        raise der.DerError("CertificationRequestInfo is not a SEQUENCE")
    children = der.elements(request_info, outer.start, outer.end)
    if len(children) < 3 or children[2].tag != der.SEQUENCE:
        raise der.DerError("CertificationRequestInfo has no SubjectPublicKeyInfo")
    return children[2].raw


def ec_parameters_tag(spki: bytes) -> int | None:
    """For an id-ecPublicKey SubjectPublicKeyInfo, the DER tag of its parameters: 0x06 for a
    namedCurve, 0x30 for explicit ECParameters, 0x05 for implicitlyCA. None for other keys."""
    outer = der.read_element(spki)
    if outer.tag != der.SEQUENCE:
        raise der.DerError("SubjectPublicKeyInfo is not a SEQUENCE")
    algorithm = der.elements(spki, outer.start, outer.end)[0]
    if algorithm.tag != der.SEQUENCE:
        raise der.DerError("AlgorithmIdentifier is not a SEQUENCE")
    parts = der.elements(spki, algorithm.start, algorithm.end)
    if not parts or parts[0].tag != der.OID:
        raise der.DerError("AlgorithmIdentifier has no algorithm OID")
    if parts[0].raw != _ID_EC_PUBLIC_KEY:
        return None
    if len(parts) < 2:
        return 0x05  # absent parameters: no curve named either
    return parts[1].tag

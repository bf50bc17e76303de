"""EST bodies (RFC 7030 section 4): base64 PKCS#10 in, base64 PKCS#7 certs-only out, and the
CSR attributes a client should include. Bytes in, bytes out: no web framework here."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import AttributeOID

from certfleet.errors import InvalidInput
from certfleet.protocols.est.errors import MalformedEstMessage
from certfleet.x509 import load_csr

__all__ = [
    "CERTS_ONLY",
    "CSRATTRS",
    "EnrolmentRequest",
    "base64_body",
    "certs_only",
    "csr_attributes",
    "decode_base64",
    "parse_enrolment",
]

CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
CSRATTRS = "application/csrattrs"
_WHITESPACE = re.compile(rb"[ \t\r\n]+")
_PEM_ARMOR = re.compile(rb"-----(BEGIN|END) [A-Z0-9 ]+-----")

# RFC 7030 section 4.5.2: the attributes we ask for. challengePassword says a client may bind
# its CSR to the TLS connection (section 3.5); the two signature algorithms are those the CA
# signs with and expects proof-of-possession signatures in.
_ASKED_ATTRIBUTES = (
    "1.2.840.113549.1.9.7",  # challengePassword (tls-unique, RFC 7030 section 3.5)
    "1.2.840.10045.4.3.2",  # ecdsa-with-SHA256
    "1.2.840.113549.1.1.11",  # sha256WithRSAEncryption
)


@dataclass(frozen=True)
class EnrolmentRequest:
    """A parsed ``simpleenroll``/``simplereenroll``/``serverkeygen`` body: the CSR (its
    signature verified) and its challengePassword, if any (RFC 7030 section 3.5)."""

    csr: x509.CertificateSigningRequest
    challenge_password: bytes | None


def decode_base64(body: bytes) -> bytes:
    """RFC 7030 section 4.2.1 says ``Content-Transfer-Encoding: base64`` (RFC 2045): line
    breaks and blanks are allowed, anything outside the alphabet is not. A PEM armor is
    tolerated (some clients send ``openssl req`` output as is)."""
    stripped = _WHITESPACE.sub(b"", _PEM_ARMOR.sub(b"", body))
    if not stripped:
        raise MalformedEstMessage("empty request body: expected a base64-encoded PKCS#10 CSR")
    try:
        return base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEstMessage(f"request body is not valid base64: {exc}") from exc


def parse_enrolment(body: bytes) -> EnrolmentRequest:
    """The CSR of an enrolment request. Raises :class:`MalformedEstMessage`."""
    der = decode_base64(body)
    try:
        csr = load_csr(der)
    except InvalidInput as exc:
        raise MalformedEstMessage(f"request body is not a valid PKCS#10 CSR: {exc.detail}") from exc
    return EnrolmentRequest(csr, _challenge_password(csr))


def _challenge_password(csr: x509.CertificateSigningRequest) -> bytes | None:
    try:
        attribute = csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD)
    except x509.AttributeNotFound:
        return None
    except ValueError as exc:  # several challengePassword attributes, or one malformed
        raise MalformedEstMessage(f"CSR attributes are malformed: {exc}") from exc
    return attribute.value


def base64_body(der: bytes) -> bytes:
    """Base64 in lines of 76 characters (RFC 2045 section 6.8)."""
    return base64.encodebytes(der)


def certs_only(certificates: Sequence[x509.Certificate]) -> bytes:
    """A degenerate PKCS#7 SignedData holding ``certificates``, base64 (RFC 7030 4.1.3)."""
    return base64_body(pkcs7.serialize_certificates(list(certificates), Encoding.DER))


def csr_attributes() -> bytes:
    """``CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID`` (RFC 7030 section 4.5.2), base64."""
    sequence = core.SequenceOf(spec=core.ObjectIdentifier)
    for oid in _ASKED_ATTRIBUTES:
        sequence.append(core.ObjectIdentifier(oid))
    return base64_body(sequence.dump())

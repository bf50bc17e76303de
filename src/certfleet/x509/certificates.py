"""Reading certificates: PEM bundles or DER, and the facts the inventory keeps about each."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, NameOID

from certfleet.x509.errors import MalformedInput
from certfleet.x509.keys import describe_public_key
from certfleet.x509.names import names_from_extension

__all__ = [
    "CertificateFacts",
    "fingerprint_sha256",
    "is_ca",
    "key_usage",
    "load_certificates",
    "serial_hex",
    "signed_by",
    "to_pem",
]

_PEM_MARKER = b"-----BEGIN CERTIFICATE-----"


def serial_hex(serial_number: int) -> str:
    """Lowercase hex without leading zeros: the inventory's serial format."""
    return format(serial_number, "x")


def fingerprint_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def is_ca(cert: x509.Certificate) -> bool:
    """True when basicConstraints says cA (RFC 5280 section 4.2.1.9); a certificate without
    the extension, or with one that does not parse, is not a CA."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """A keyUsage extension (RFC 5280 section 4.2.1.3) with only the named bits set: the
    others (nonRepudiation, dataEncipherment, keyAgreement...) certfleet never asserts."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s key signed ``cert`` and the names chain (no path validation,
    no dates: a caller that needs those checks them itself)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def to_pem(certs: list[x509.Certificate] | tuple[x509.Certificate, ...]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def load_certificates(data: bytes, *, source: str = "input") -> list[x509.Certificate]:
    """Parse one or more PEM certificates, or one DER certificate. Raises MalformedInput."""
    try:
        if _PEM_MARKER in data:
            return x509.load_pem_x509_certificates(data)
        if data.lstrip().startswith(b"-----BEGIN"):
            raise MalformedInput(f"{source}: PEM data holds no CERTIFICATE block")
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise MalformedInput(f"{source}: not a valid PEM or DER certificate ({exc})") from exc


def _common_name(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode(errors="replace")


@dataclass(frozen=True)
class CertificateFacts:
    """What the inventory records about a certificate, derived from its bytes alone."""

    serial: str
    fingerprint_sha256: str
    subject: str
    common_name: str | None
    sans: tuple[str, ...]
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    key_algorithm: str
    key_size: int
    signature_algorithm: str
    is_ca: bool
    self_signed: bool
    der: bytes

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateFacts:
        try:
            san_ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
            sans = tuple(names_from_extension(san_ext.value))  # type: ignore[arg-type]
        except x509.ExtensionNotFound:
            sans = ()
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
            is_ca = bc.value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        key = describe_public_key(cert.public_key())
        sig_oid = cert.signature_algorithm_oid
        return cls(
            serial=serial_hex(cert.serial_number),
            fingerprint_sha256=fingerprint_sha256(cert),
            subject=cert.subject.rfc4514_string(),
            common_name=_common_name(cert.subject),
            sans=sans,
            issuer=cert.issuer.rfc4514_string(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            key_algorithm=key.algorithm,
            key_size=key.size,
            signature_algorithm=getattr(sig_oid, "_name", sig_oid.dotted_string),
            is_ca=is_ca,
            self_signed=cert.issuer == cert.subject,
            der=cert.public_bytes(serialization.Encoding.DER),
        )

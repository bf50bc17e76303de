"""EST bodies: base64 PKCS#10 in (RFC 7030 section 4.2.1), PKCS#7 certs-only and CSR
attributes out (sections 4.1.3 and 4.5.2)."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AttributeOID, NameOID

from certfleet.protocols.est import (
    MalformedEstMessage,
    certs_only,
    csr_attributes,
    decode_base64,
    parse_enrolment,
)


def csr_der(challenge: bytes | None = None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev.example.test")])
    )
    if challenge is not None:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def self_signed(name: str, key: CertificateIssuerPrivateKeyTypes | None = None) -> x509.Certificate:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def test_a_base64_csr_with_line_breaks_is_parsed() -> None:
    der = csr_der()
    request = parse_enrolment(base64.encodebytes(der))  # 76-character lines, as openssl writes
    assert request.csr.subject.rfc4514_string() == "CN=dev.example.test"
    assert request.challenge_password is None


def test_the_challenge_password_is_read_for_channel_binding() -> None:
    assert parse_enrolment(base64.b64encode(csr_der(b"Zm9vYmFy"))).challenge_password == b"Zm9vYmFy"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "empty request body"),
        (b"not base64 at all!", "not valid base64"),
        (b"QUJD=Q", "not valid base64"),
        (base64.b64encode(b"\x30\x03\x02\x01\x00"), "not a valid PKCS#10 CSR"),
    ],
)
def test_garbage_is_refused_precisely(body: bytes, detail: str) -> None:
    with pytest.raises(MalformedEstMessage) as raised:
        parse_enrolment(body)
    assert detail in raised.value.detail
    assert raised.value.http_status == 400


def test_a_csr_whose_signature_does_not_verify_is_refused() -> None:
    der = bytearray(csr_der())
    der[-1] ^= 0x01  # the last byte of the signature
    with pytest.raises(MalformedEstMessage, match="not a valid PKCS#10 CSR"):
        parse_enrolment(base64.b64encode(bytes(der)))


def test_pem_armor_is_tolerated() -> None:
    pem = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(csr_der())
    pem += b"-----END CERTIFICATE REQUEST-----\n"
    assert decode_base64(pem)[:1] == b"\x30"


def test_certs_only_round_trips_through_pkcs7() -> None:
    certificates = [self_signed("a.example.test"), self_signed("b.example.test")]
    loaded = pkcs7.load_der_pkcs7_certificates(base64.b64decode(certs_only(certificates)))
    assert sorted(loaded, key=str) == sorted(certificates, key=str)  # a SET OF: DER orders it


def test_csr_attributes_ask_for_the_channel_binding_and_the_signature_algorithms() -> None:
    parsed = core.SequenceOf.load(base64.b64decode(csr_attributes()), spec=core.ObjectIdentifier)
    dotted = [oid.dotted for oid in parsed]
    assert dotted == ["1.2.840.113549.1.9.7", "1.2.840.10045.4.3.2", "1.2.840.113549.1.1.11"]

"""Reading certificates (PEM bundles or DER) and the facts the inventory keeps."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certfleet.x509 import (
    CertificateFacts,
    MalformedInput,
    fingerprint_sha256,
    load_certificates,
    serial_hex,
    to_pem,
)
from tests.x509.factories import rsa_key

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _self_signed(cn: str, *, serial: int = 0x0ABC, key: object = None, ca: bool = False) -> x509.Certificate:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(serial)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(cn), x509.IPAddress(ipaddress.ip_address("2001:db8::1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )


def test_pem_bundle_loads_every_certificate_in_order() -> None:
    certs = [_self_signed("a.example.com"), _self_signed("b.example.com"), _self_signed("c.example.com")]
    bundle = b"some preamble text\n" + to_pem(certs).encode() + b"trailing text\n"
    assert load_certificates(bundle) == certs


def test_der_loads_one_certificate() -> None:
    cert = _self_signed("a.example.com")
    assert load_certificates(cert.public_bytes(serialization.Encoding.DER)) == [cert]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a valid PEM or DER"),
        (b"hello world", "not a valid PEM or DER"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "holds no CERTIFICATE block"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a valid PEM or DER"),
    ],
    ids=["empty", "text", "pem-key-only", "pem-garbage"],
)
def test_malformed_input_names_its_source(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput, match=f"^bundle.pem: .*{reason}"):
        load_certificates(data, source="bundle.pem")


def test_truncated_der_is_malformed() -> None:
    data = _self_signed("a.example.com").public_bytes(serialization.Encoding.DER)
    with pytest.raises(MalformedInput):
        load_certificates(data[:-1])


def test_one_bad_block_spoils_a_bundle() -> None:
    good = to_pem([_self_signed("a.example.com")])
    bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    with pytest.raises(MalformedInput):
        load_certificates((good + bad).encode())


@pytest.mark.parametrize(("value", "text"), [(1, "1"), (0x0ABC, "abc"), (2**128 - 1, "f" * 32)])
def test_serial_hex_is_lowercase_without_leading_zeros(value: int, text: str) -> None:
    assert serial_hex(value) == text


def test_facts_of_a_certificate() -> None:
    key = rsa_key(2048)
    cert = _self_signed("www.example.com", serial=0x00FF01, key=key, ca=True)
    facts = CertificateFacts.of(cert)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert facts.serial == "ff01"
    assert facts.fingerprint_sha256 == hashlib.sha256(der).hexdigest() == fingerprint_sha256(cert)
    assert facts.subject == "CN=www.example.com"
    assert facts.issuer == "CN=www.example.com"
    assert facts.common_name == "www.example.com"
    assert facts.sans == ("www.example.com", "2001:db8::1")
    assert facts.not_before == NOW
    assert facts.not_after == NOW + dt.timedelta(days=30)
    assert (facts.key_algorithm, facts.key_size) == ("rsa", 2048)
    assert facts.signature_algorithm == "sha256WithRSAEncryption"
    assert facts.is_ca and facts.self_signed
    assert facts.der == der

"""Certificates and CSRs for the tests: good ones, and each kind of CSR certfleet refuses.

Keys that are slow to make (an RSA modulus over 8192 bits) are made once per test session.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import subprocess
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

OVERSIZED_RSA_BITS = 8704


def build_csr(
    key: CertificateIssuerPrivateKeyTypes,
    names: tuple[str, ...] = (),
    cn: str | None = None,
) -> x509.CertificateSigningRequest:
    """A CSR signed by ``key`` asking for ``names`` as DNS SANs (IPs when they parse as IPs)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if names:
        general: list[x509.GeneralName] = []
        for name in names:
            try:
                general.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                general.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    algorithm = None if key.__class__.__name__.startswith("Ed") else hashes.SHA256()
    return builder.sign(key, algorithm)  # type: ignore[arg-type]


def pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def der(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.DER)


def with_flipped_signature(csr: x509.CertificateSigningRequest) -> bytes:
    """The CSR's DER with one bit of the signature flipped (its last octet): still well-formed
    DER, but the signature no longer verifies."""
    data = bytearray(der(csr))
    assert data.endswith(csr.signature)
    data[-1] ^= 0x01
    return bytes(data)


@functools.cache
def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def dsa_csr() -> bytes:
    return pem(build_csr(dsa.generate_private_key(2048), ("dsa.example.com",)))


def secp256k1_csr() -> bytes:
    return pem(build_csr(ec.generate_private_key(ec.SECP256K1()), ("k1.example.com",)))


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@functools.cache
def explicit_ec_csr() -> bytes:
    """A P-256 key encoded with explicit curve parameters, made by the real openssl."""
    with tempfile.TemporaryDirectory() as tmp:
        key, req = Path(tmp, "key.pem"), Path(tmp, "req.csr")
        _openssl(
            "ecparam", "-name", "prime256v1", "-param_enc", "explicit", "-genkey", "-noout", "-out", str(key)
        )
        _openssl("req", "-new", "-key", str(key), "-subj", "/CN=explicit.example.com", "-out", str(req))
        return req.read_bytes()


@functools.cache
def oversized_rsa_csr() -> bytes:
    """A CSR for an 8704-bit RSA key, made once per session.

    A two-prime key of that size takes openssl tens of seconds; a five-prime key (RFC 8017
    multi-prime RSA) takes about one. The CSR carries only the public key (modulus and
    exponent), which is an honest 8704-bit RSA key either way, and openssl signs it with
    the private key, so the signature verifies.
    """
    with tempfile.TemporaryDirectory() as tmp:
        key, req = Path(tmp, "key.pem"), Path(tmp, "req.csr")
        _openssl(
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            f"rsa_keygen_bits:{OVERSIZED_RSA_BITS}",
            "-pkeyopt",
            "rsa_keygen_primes:5",
            "-out",
            str(key),
        )
        _openssl("req", "-new", "-key", str(key), "-subj", "/CN=big.example.com", "-out", str(req))
        return req.read_bytes()


def external_certificate(
    cn: str, not_before: dt.datetime, days: int = 30, serial: int | None = None
) -> x509.Certificate:
    """A certificate from some other CA ("CN=Other CA"), as an import or a scan finds one."""
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other CA")]))
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )

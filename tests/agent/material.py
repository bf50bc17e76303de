"""Keys and certificates for agent tests: a throwaway self-signed CA issuing leaves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from certfleet.agent.config import CertificateSpec, FileTarget
from certfleet.agent.targets import Material
from certfleet.x509 import KeyType, generate_private_key


class ThrowawayCa:
    def __init__(self) -> None:
        self.key = generate_private_key(KeyType.EC_P256)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Agent Test CA")])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())  # type: ignore[arg-type]
        )

    def issue(
        self,
        names: Sequence[str] = ("www.example.test",),
        *,
        key_type: KeyType = KeyType.EC_P256,
        not_before: dt.datetime | None = None,
        lifetime: dt.timedelta = dt.timedelta(days=90),
    ) -> Material:
        key = generate_private_key(key_type)
        start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + lifetime)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(self.key, hashes.SHA256())  # type: ignore[arg-type]
        )
        return Material(key, cert, (self.certificate,))


def spec_for(directory: Path, name: str = "www", **files: FileTarget) -> CertificateSpec:
    targets = tuple(files.values()) or (
        FileTarget("key", directory / f"{name}.key", 0o600),
        FileTarget("fullchain", directory / f"{name}.crt", 0o644),
    )
    return CertificateSpec(
        name=name, names=("www.example.test",), profile="tls-server", key_type=KeyType.EC_P256, files=targets
    )


def sign_csr(
    ca: ThrowawayCa, csr_pem: str, lifetime: dt.timedelta = dt.timedelta(days=90)
) -> x509.Certificate:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + lifetime)
    )
    for extension in csr.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(ca.key, hashes.SHA256())  # type: ignore[arg-type]

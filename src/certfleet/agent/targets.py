"""What each target file holds, rendered from one key and its certificate chain.

- ``key``: the private key, PKCS#8 PEM, unencrypted (services read it without a prompt; the
  file is 0600 by default);
- ``cert``: the leaf; ``chain``: the issuing chain (root excluded); ``fullchain``: both;
- ``combined``: full chain then key in one PEM (HAProxy, some appliances);
- ``pkcs12``: key and chain, AES-256 and PBKDF2 (cryptography's best available encryption,
  which OpenSSL 3 and Java 11+ read);
- ``jks``: a Java KeyStore with one private-key entry (pyjks), key and store under the same
  password, as ``keytool`` expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import jks
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from certfleet.agent.config import CertificateSpec, FileTarget
from certfleet.x509 import fingerprint_sha256, to_pem

__all__ = ["Material", "render", "render_all"]

KEYSTORE_ALIAS = "certfleet"


@dataclass(frozen=True)
class Material:
    """A private key and the certificate chain for it (leaf first, root excluded)."""

    key: PrivateKeyTypes
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    def __post_init__(self) -> None:
        if self.key.public_key() != self.certificate.public_key():
            # The one invariant of every deployment: never a key with another key's certificate.
            raise ValueError("the private key does not match the certificate")

    @property
    def fingerprint(self) -> str:
        return fingerprint_sha256(self.certificate)

    @property
    def fullchain_pem(self) -> bytes:
        return to_pem([self.certificate, *self.chain]).encode()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _jks(material: Material, password: bytes) -> bytes:
    key_der = material.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    certs = [c.public_bytes(serialization.Encoding.DER) for c in (material.certificate, *material.chain)]
    entry = jks.PrivateKeyEntry.new(KEYSTORE_ALIAS, certs, key_der, "pkcs8")
    store = jks.KeyStore.new("jks", [entry])
    data: bytes = store.saves(password.decode())
    return data


def render(target: FileTarget, material: Material) -> bytes:
    match target.kind:
        case "key":
            return material.key_pem()
        case "cert":
            return to_pem([material.certificate]).encode()
        case "chain":
            return to_pem(material.chain).encode()
        case "fullchain":
            return material.fullchain_pem
        case "combined":
            return material.fullchain_pem + material.key_pem()
        case "pkcs12":
            assert target.password is not None
            return pkcs12.serialize_key_and_certificates(
                KEYSTORE_ALIAS.encode(),
                material.key,  # type: ignore[arg-type]
                material.certificate,
                list(material.chain) or None,
                serialization.BestAvailableEncryption(target.password),
            )
        case "jks":
            assert target.password is not None
            return _jks(material, target.password)
    raise ValueError(f"unknown target kind {target.kind}")  # pragma: no cover - config checks kinds


def render_all(spec: CertificateSpec, material: Material) -> dict[str, bytes]:
    """Every file of a version, by kind. The key is always kept (as ``key``), even when no
    target asks for it, so a later change of targets can be rendered again from disk."""
    files = {target.kind: render(target, material) for target in spec.files}
    files.setdefault("key", material.key_pem())
    files.setdefault("fullchain", material.fullchain_pem)
    return files

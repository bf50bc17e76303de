"""CA keys as encrypted PKCS#8 files (0600) under a passphrase kept in a 0600 file."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.ca.errors import CaKeyError
from certfleet.fs import write_atomic
from certfleet.x509 import KeyType, generate_private_key

__all__ = ["SoftwareKeyBackend", "load_or_create_passphrase"]


def load_or_create_passphrase(path: Path, *, create: bool) -> bytes:
    """Read the CA passphrase; with ``create``, make a random one if the file is missing."""
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise CaKeyError(f"passphrase file {path} is readable by others: chmod 600 it")
        value = path.read_bytes().strip()
        if not value:
            raise CaKeyError(f"passphrase file {path} is empty")
        return value
    if not create:
        raise CaKeyError(f"passphrase file {path} is missing")
    value = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    write_atomic(path, value + b"\n", mode=0o600)
    return value


class SoftwareKeyBackend:
    name = "software"

    def __init__(self, directory: Path, passphrase: bytes) -> None:
        self._directory = directory
        self._passphrase = passphrase

    def _path(self, key_ref: str) -> Path:
        if "/" in key_ref or key_ref.startswith("."):
            raise CaKeyError(f"bad key reference {key_ref!r}")
        return self._directory / f"{key_ref}.key.pem"

    def create(self, label: str, key_type: KeyType) -> str:
        key = generate_private_key(key_type)
        key_ref = f"{label}-{secrets.token_hex(4)}"
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        write_atomic(self._path(key_ref), pem, mode=0o600)
        return key_ref

    def load(self, key_ref: str) -> CertificateIssuerPrivateKeyTypes:
        path = self._path(key_ref)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CaKeyError(f"cannot read CA key {path}: {exc.strerror}") from exc
        try:
            key = serialization.load_pem_private_key(data, password=self._passphrase)
        except (ValueError, TypeError) as exc:
            raise CaKeyError(f"cannot decrypt CA key {path}: wrong passphrase or damaged file") from exc
        return key  # type: ignore[return-value]

    def unavailable(self) -> str | None:
        return None  # a damaged key file is a configuration error, reported on load

    def delete(self, key_ref: str) -> None:
        self._path(key_ref).unlink(missing_ok=True)

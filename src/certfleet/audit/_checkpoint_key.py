"""The checkpoint signing key: Ed25519, in the data directory beside the CA keys, never in
the database (a checkpoint is worth something only if the database's attacker cannot sign
one). Encrypted at rest with the CA passphrase, 0600, created on first use."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    load_pem_private_key,
)

from certfleet.errors import ConfigurationError

__all__ = ["CHECKPOINT_KEY_FILE", "load_or_create_checkpoint_key"]

CHECKPOINT_KEY_FILE = "audit-checkpoint.key"


def _load(path: Path, passphrase: bytes) -> Ed25519PrivateKey:
    if path.stat().st_mode & 0o077:
        raise ConfigurationError(f"checkpoint key {path} is readable by others: chmod 600 it")
    try:
        key = load_pem_private_key(path.read_bytes(), passphrase)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"checkpoint key {path} cannot be read with the CA passphrase (damaged, or another passphrase)"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"checkpoint key {path} is not an Ed25519 key")
    return key


def load_or_create_checkpoint_key(path: Path, passphrase: bytes) -> Ed25519PrivateKey:
    """Load the key, or make one if ``path`` does not exist. Two first uses at once agree on
    one key: the new file is linked into place, which fails if the other got there first."""
    if path.exists():
        return _load(path, passphrase)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(passphrase))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _load(path, passphrase)
    finally:
        tmp.unlink(missing_ok=True)
    return key

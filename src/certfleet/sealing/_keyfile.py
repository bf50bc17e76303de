"""The secrets key file: 32 random bytes, base64url on one line, mode 0600.

Why a random key in its own file rather than one derived from the CA passphrase with HKDF:
the two can then be rotated, backed up and handed to a process independently (re-sealing a
few channel secrets does not mean re-encrypting the CA keys, and a new CA passphrase does not
strand every sealed value), and a key that is 256 uniformly random bits needs no derivation.
It lives in ``keys/`` beside the CA's encrypted keys, so whatever copies or backs up the CA
keys takes it too: a node or a restored backup without it cannot open the sealed values, and
says so at start.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path

from certfleet.fs import write_atomic
from certfleet.sealing._box import KEY_BYTES, SecretBox
from certfleet.sealing.errors import SecretsKeyError

__all__ = ["SECRETS_KEY_FILE_NAME", "load_or_create_secrets_key"]

SECRETS_KEY_FILE_NAME = "secrets.key"


def load_or_create_secrets_key(path: Path, *, create: bool) -> SecretBox:
    """Read the key at ``path``; with ``create``, make a random one (0600) when it is missing.

    Refused with a one-line :class:`SecretsKeyError`: a missing file (without ``create``), a
    file others can read, one that is not 32 bytes of base64url.
    """
    if not path.exists():
        if not create:
            raise SecretsKeyError(f"secrets key file {path} is missing")
        key = secrets.token_bytes(KEY_BYTES)
        write_atomic(path, base64.urlsafe_b64encode(key) + b"\n", mode=0o600)
        return SecretBox(key, source=str(path))
    try:
        if path.stat().st_mode & 0o077:
            raise SecretsKeyError(f"secrets key file {path} is readable by others: chmod 600 it")
        text = path.read_bytes().strip()
    except OSError as exc:
        raise SecretsKeyError(f"cannot read secrets key file {path}: {exc.strerror}") from exc
    try:
        key = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise SecretsKeyError(
            f"secrets key file {path} is not a certfleet secrets key ({KEY_BYTES} random bytes, base64url)"
        )
    return SecretBox(key, source=str(path))

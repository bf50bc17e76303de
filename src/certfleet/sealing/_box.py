"""AES-256-GCM envelopes bound to the database row that holds them.

An envelope is text: ``v1:<key id>:<base64url(nonce || ciphertext || tag)>``. ``v1`` names the
format (AES-256-GCM, 96-bit random nonce, the associated data below) so a later format can sit
beside it; the key id (the first 16 hex digits of SHA-256 over a label and the key) says which
key sealed it, so a wrong key file is reported as such instead of as tampering.

The associated data is the envelope's header and the value's place: table, column and row id.
GCM authenticates it without storing it, so a ciphertext copied into another row, another
column or under another header fails to open: someone who can write the database but not
read the key cannot move a known channel's secret or an EAB key to a row they control.

A 96-bit random nonce per seal is safe for far more values than a certfleet database holds
(NIST SP 800-38D section 8.3 bounds one key at 2^32 random-nonce messages).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from certfleet.sealing.errors import SecretsKeyError, UnsealError

__all__ = ["KEY_BYTES", "RowRef", "SecretBox", "envelope_key_id"]

KEY_BYTES = 32  # AES-256
_NONCE_BYTES = 12  # 96 bits: GCM's native nonce size (SP 800-38D section 8.2.2)
_VERSION = "v1"
_KEY_ID_LABEL = b"certfleet secrets key id v1\x00"


@dataclass(frozen=True)
class RowRef:
    """Where a sealed value lives; it becomes the envelope's associated data."""

    table: str
    column: str
    row_id: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column} of {self.row_id!r}"

    def associated_data(self, header: str) -> bytes:
        return json.dumps([header, self.table, self.column, self.row_id]).encode()


def envelope_key_id(value: str) -> str | None:
    """The key id of an envelope, or None when ``value`` is not one (e.g. legacy plaintext)."""
    version, sep, rest = value.partition(":")
    if version != _VERSION or not sep:
        return None
    key_id, sep, body = rest.partition(":")
    if not sep or len(key_id) != 16 or not body:
        return None
    return key_id


class SecretBox:
    """Seals and opens values with one 256-bit key. Build it with
    :func:`certfleet.sealing.load_or_create_secrets_key`."""

    def __init__(self, key: bytes, *, source: str = "the secrets key") -> None:
        if len(key) != KEY_BYTES:
            raise SecretsKeyError(f"{source} must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(_KEY_ID_LABEL + key).hexdigest()[:16]
        self.source = source

    def __repr__(self) -> str:  # never the key
        return f"SecretBox(key_id={self.key_id!r})"

    def seal(self, plaintext: bytes, where: RowRef) -> str:
        header = f"{_VERSION}:{self.key_id}"
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, where.associated_data(header))
        return f"{header}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def open(self, envelope: str, where: RowRef) -> bytes:
        key_id = envelope_key_id(envelope)
        if key_id is None:
            raise UnsealError(f"{where} is not a sealed value")
        if key_id != self.key_id:
            raise SecretsKeyError(
                f"{where} was sealed with secrets key {key_id}, but {self.source} is key "
                f"{self.key_id}: restore the original key file"
            )
        body = envelope.rsplit(":", 1)[1]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise UnsealError(f"{where} is not a well-formed sealed value") from None
        if len(raw) < _NONCE_BYTES + 16:
            raise UnsealError(f"{where} is not a well-formed sealed value")
        try:
            return self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], where.associated_data(f"{_VERSION}:{key_id}")
            )
        except InvalidTag:
            raise UnsealError(
                f"{where} does not authenticate: it was altered or moved from another row"
            ) from None

"""Secrets at rest: values the platform must use again (EAB HMAC keys, webhook HMAC secrets,
SMTP passwords, Slack webhook URLs) are stored as AES-256-GCM envelopes, each bound to its
row, under a random key in the data directory (``keys/secrets.key``, 0600). The database alone
never holds them in plaintext."""

from __future__ import annotations

from certfleet.sealing._box import KEY_BYTES, RowRef, SecretBox, envelope_key_id
from certfleet.sealing._keyfile import SECRETS_KEY_FILE_NAME, load_or_create_secrets_key
from certfleet.sealing.errors import SecretsKeyError, UnsealError

__all__ = [
    "KEY_BYTES",
    "SECRETS_KEY_FILE_NAME",
    "RowRef",
    "SecretBox",
    "SecretsKeyError",
    "UnsealError",
    "envelope_key_id",
    "load_or_create_secrets_key",
]

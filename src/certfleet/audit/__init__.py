"""The tamper-evident audit log."""

from __future__ import annotations

from certfleet.audit._chain import (
    GENESIS_HASH,
    AuditEntry,
    AuditLog,
    AuditRepository,
    ChainVerdict,
    entry_hash,
    verify_chain,
)
from certfleet.audit._checkpoint import (
    Checkpoint,
    CheckpointVerdict,
    checkpoint_key_id,
    parse_public_key,
    public_key_text,
    sign_checkpoint,
    verify_checkpoints,
)
from certfleet.audit._checkpoint_key import CHECKPOINT_KEY_FILE, load_or_create_checkpoint_key
from certfleet.audit._subjects import CertificateRef, is_legacy_serial_subject

__all__ = [
    "CHECKPOINT_KEY_FILE",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLog",
    "AuditRepository",
    "CertificateRef",
    "ChainVerdict",
    "Checkpoint",
    "CheckpointVerdict",
    "checkpoint_key_id",
    "entry_hash",
    "is_legacy_serial_subject",
    "load_or_create_checkpoint_key",
    "parse_public_key",
    "public_key_text",
    "sign_checkpoint",
    "verify_chain",
    "verify_checkpoints",
]

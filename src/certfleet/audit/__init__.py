"""The tamper-evident audit log."""

from __future__ import annotations

from certfleet.audit._chain import (
    GENESIS_HASH,
    AuditDraft,
    AuditEntry,
    AuditLog,
    AuditRepository,
    ChainVerdict,
    entry_hash,
    extend_chain,
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
    "AuditDraft",
    "AuditEntry",
    "AuditLog",
    "AuditRepository",
    "CertificateRef",
    "ChainVerdict",
    "Checkpoint",
    "CheckpointVerdict",
    "checkpoint_key_id",
    "entry_hash",
    "extend_chain",
    "is_legacy_serial_subject",
    "load_or_create_checkpoint_key",
    "parse_public_key",
    "public_key_text",
    "sign_checkpoint",
    "verify_chain",
    "verify_checkpoints",
]

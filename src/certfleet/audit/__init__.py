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

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLog",
    "AuditRepository",
    "ChainVerdict",
    "entry_hash",
    "verify_chain",
]

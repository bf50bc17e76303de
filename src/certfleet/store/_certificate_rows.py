"""A certificate record as the column values of its ``certificates`` row, for the Core
inserts of issuance (``_issuance_ledger``) and discovery (``_discovery_bulk``)."""

from __future__ import annotations

import json
from typing import Any

from certfleet.inventory import CertificateRecord

__all__ = ["CERTIFICATE_COLUMNS", "certificate_row"]


def certificate_row(record: CertificateRecord) -> dict[str, Any]:
    return {
        "serial": record.serial,
        "fingerprint_sha256": record.fingerprint_sha256,
        "subject": record.subject,
        "common_name": record.common_name,
        "sans_json": json.dumps(list(record.sans)),
        "issuer": record.issuer,
        "issuer_ca_id": record.issuer_ca_id,
        "not_before": record.not_before,
        "not_after": record.not_after,
        "key_algorithm": record.key_algorithm,
        "key_size": record.key_size,
        "signature_algorithm": record.signature_algorithm,
        "profile": record.profile,
        "source": record.source.value,
        "status": record.status.value,
        "team": record.team,
        "tags_json": json.dumps(list(record.tags)),
        "first_seen": record.first_seen,
        "last_seen": record.last_seen,
        "revoked_at": record.revoked_at,
        "revocation_reason": record.revocation_reason,
        "der": record.der,
    }


# The columns ``certificate_row`` fills: every column of ``certificates`` but its id.
CERTIFICATE_COLUMNS = (
    "serial", "fingerprint_sha256", "subject", "common_name", "sans_json", "issuer", "issuer_ca_id",
    "not_before", "not_after", "key_algorithm", "key_size", "signature_algorithm", "profile", "source",
    "status", "team", "tags_json", "first_seen", "last_seen", "revoked_at", "revocation_reason", "der",
)  # fmt: skip

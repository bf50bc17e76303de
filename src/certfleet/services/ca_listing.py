"""The CA hierarchy as ``certfleet ca list|show`` and ``GET /api/v1/cas[/{id}]`` show it: one
place builds the dicts, so the local CLI and the API cannot drift apart."""

from __future__ import annotations

from typing import Any

from certfleet.ca import CaCertificate
from certfleet.clock import iso
from certfleet.errors import NotFound
from certfleet.services.authorities import AuthorityService
from certfleet.x509 import describe_public_key, fingerprint_sha256, serial_hex, to_pem

__all__ = ["CA_COLUMNS", "ca_detail", "ca_row", "ca_rows"]

CA_COLUMNS = ["id", "role", "name", "parent", "key", "not_before", "not_after", "active"]
"""The columns of the table and CSV; JSON carries every key of :func:`ca_rows`."""


def ca_row(ca: CaCertificate) -> dict[str, Any]:
    """One CA as ``ca list`` shows it (``ca create`` prints the two it made)."""
    return {
        "id": ca.id,
        "role": ca.role,
        "name": ca.name,
        "parent": ca.parent_id,
        "subject": ca.certificate.subject.rfc4514_string(),
        "key": describe_public_key(ca.certificate.public_key()).label,
        "not_before": iso(ca.not_before),
        "not_after": iso(ca.not_after),
        "active": ca.active,
    }


def ca_rows(authorities: AuthorityService) -> list[dict[str, Any]]:
    """Every CA of the hierarchy (retired and revoked ones too), in storage order."""
    return [ca_row(ca) for ca in authorities.hierarchy()]


def ca_detail(authorities: AuthorityService, ca_id: str) -> dict[str, Any]:
    """One CA: its row, serial, fingerprint and certificate (PEM). CA certificates are public
    material (the plain-HTTP listener serves them), so any reader may see them."""
    wanted = ca_id.strip()
    for ca in authorities.hierarchy():
        if ca.id == wanted:
            return {
                **ca_row(ca),
                "serial": serial_hex(ca.certificate.serial_number),
                "fingerprint_sha256": fingerprint_sha256(ca.certificate),
                "certificate_pem": to_pem([ca.certificate]),
            }
    raise NotFound(f"no CA with id {ca_id!r}: see 'certfleet ca list'")

"""The inventory: the single record of every certificate certfleet issued, imported or found."""

from __future__ import annotations

from certfleet.inventory._ports import CertificateRepository, SerialRepository
from certfleet.inventory._query import (
    DEFAULT_PAGE_SIZE,
    MAX_EXPIRING_DAYS,
    MAX_PAGE_SIZE,
    CertificateQuery,
    decode_cursor,
    encode_cursor,
)
from certfleet.inventory._records import CertificateRecord, CertificateSummary, Source, Status

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_EXPIRING_DAYS",
    "MAX_PAGE_SIZE",
    "CertificateQuery",
    "CertificateRecord",
    "CertificateRepository",
    "CertificateSummary",
    "SerialRepository",
    "Source",
    "Status",
    "decode_cursor",
    "encode_cursor",
]

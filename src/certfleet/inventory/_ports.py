"""The storage interfaces the inventory needs; ``certfleet.store`` implements them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from certfleet.inventory._query import CertificateQuery
from certfleet.inventory._records import CertificateRecord

__all__ = ["CertificateRepository", "SerialRepository"]


class CertificateRepository(Protocol):
    def add(self, record: CertificateRecord) -> CertificateRecord:
        """Insert; return the record with its id. Raises Conflict on a duplicate fingerprint."""
        ...

    def get_by_fingerprint(self, fingerprint_sha256: str) -> CertificateRecord | None: ...

    def get_by_serial(self, serial: str) -> Sequence[CertificateRecord]: ...

    def touch(self, record_id: int, seen_at: dt.datetime) -> None:
        """Update last_seen."""
        ...

    def query(self, query: CertificateQuery, now: dt.datetime) -> Sequence[CertificateRecord]:
        """Rows matching ``query``, ordered by id, at most ``query.limit``."""
        ...


class SerialRepository(Protocol):
    def reserve(self, serial: str, issuer_ca_id: str, at: dt.datetime) -> None:
        """Record a serial before it is signed. Raises Conflict when it already exists."""
        ...

    def mark_issued(self, serial: str, fingerprint_sha256: str) -> None: ...

    def get_state(self, serial: str) -> str | None: ...

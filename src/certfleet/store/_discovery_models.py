"""Tables of discovery: scan runs and their errors, certificate locations, findings.

Locations and findings are keyed by a SHA-256 over their identifying fields: paths may be
4,096 bytes, past what a PostgreSQL b-tree index accepts in one entry.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store.models import Base, UtcDateTime

__all__ = ["CertificateLocationRow", "FindingRow", "ScanErrorRow", "ScanRunRow"]

_ID = BigInteger().with_variant(Integer, "sqlite")


class ScanRunRow(Base):
    __tablename__ = "scan_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12))
    targets_json: Mapped[str] = mapped_column(Text)
    options_json: Mapped[str] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(String(100))
    requested_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    targets_total: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    certificates_found: Mapped[int] = mapped_column(Integer, default=0)
    certificates_new: Mapped[int] = mapped_column(Integer, default=0)
    findings: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class ScanErrorRow(Base):
    __tablename__ = "scan_errors"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scan_runs.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(Text)
    sni: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)


class CertificateLocationRow(Base):
    """Where a certificate was seen: ``host:port`` plus SNI, or a path. Never deleted: a
    certificate no longer there gets ``gone_at``."""

    __tablename__ = "certificate_locations"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # certificate, kind, location, sni
    place_sha256: Mapped[str] = mapped_column(String(64), index=True)  # kind, location, sni
    certificate_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("certificates.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    location: Mapped[str] = mapped_column(Text)
    sni: Mapped[str] = mapped_column(String(255), default="")
    chain_position: Mapped[int] = mapped_column(Integer)
    leaf: Mapped[bool] = mapped_column(Boolean)
    spki_sha256: Mapped[str] = mapped_column(String(64), index=True)
    first_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    gone_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_scan_id: Mapped[str | None] = mapped_column(String(32))
    tls_version: Mapped[str | None] = mapped_column(String(16))
    cipher: Mapped[str | None] = mapped_column(String(100))


class FindingRow(Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # code, location, sni, fingerprint
    place_sha256: Mapped[str] = mapped_column(String(64), index=True)  # location, sni
    code: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))
    severity_rank: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    location: Mapped[str] = mapped_column(Text)
    sni: Mapped[str] = mapped_column(String(255), default="")
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), default="")
    certificate_id: Mapped[int | None] = mapped_column(
        _ID, ForeignKey("certificates.id", ondelete="SET NULL")
    )
    detail: Mapped[str] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(String(100))
    first_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_scan_id: Mapped[str] = mapped_column(String(32))

    __table_args__ = (Index("ix_findings_open_rank", "resolved_at", "severity_rank"),)

"""SQLAlchemy tables. Timestamps are stored as aware UTC (TIMESTAMP WITH TIME ZONE on
PostgreSQL; SQLite keeps text, and :class:`UtcDateTime` restores the zone on the way out)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiTokenRow",
    "AuditHeadRow",
    "AuditRow",
    "Base",
    "CaRow",
    "CertificateNameRow",
    "CertificateRow",
    "SerialRow",
]


class UtcDateTime(TypeDecorator[dt.datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


class CaRow(Base):
    __tablename__ = "certificate_authorities"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("certificate_authorities.id"))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    key_backend: Mapped[str] = mapped_column(String(40))
    key_ref: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class SerialRow(Base):
    """Every serial is written here, committed, before the certificate is signed."""

    __tablename__ = "serials"

    serial: Mapped[str] = mapped_column(String(42), primary_key=True)
    issuer_ca_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"))
    reserved_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16))  # reserved | issued
    fingerprint_sha256: Mapped[str | None] = mapped_column(String(64))


class CertificateRow(Base):
    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    serial: Mapped[str] = mapped_column(String(42), index=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    common_name: Mapped[str | None] = mapped_column(Text)
    sans_json: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    issuer_ca_id: Mapped[str | None] = mapped_column(String(32), index=True)
    not_before: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    not_after: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    key_algorithm: Mapped[str] = mapped_column(String(20))
    key_size: Mapped[int] = mapped_column(Integer)
    signature_algorithm: Mapped[str] = mapped_column(String(60))
    profile: Mapped[str | None] = mapped_column(String(60))
    source: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    team: Mapped[str | None] = mapped_column(String(100))
    tags_json: Mapped[str] = mapped_column(Text, default="[]")
    first_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    revocation_reason: Mapped[str | None] = mapped_column(String(40))
    der: Mapped[bytes] = mapped_column(LargeBinary)

    # Listing pages by id (keyset), so each filter has an index that yields its rows in id
    # order: (status, id) and (team, id); (status, not_after) serves --expiring windows.
    __table_args__ = (
        Index("ix_certificates_status_not_after", "status", "not_after"),
        Index("ix_certificates_status_id", "status", "id"),
        Index("ix_certificates_team_id", "team", "id"),
        Index("ix_certificates_issuer", "issuer"),
    )


class CertificateNameRow(Base):
    """One row per SAN, so a name filter is an index look-up, not a scan of JSON text."""

    __tablename__ = "certificate_names"

    certificate_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("certificates.id", ondelete="CASCADE"),
        primary_key=True,
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True)

    __table_args__ = (Index("ix_certificate_names_name", "name"),)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(20))
    allow_names_json: Mapped[str] = mapped_column(Text)
    secret_hash: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class AuditRow(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(Text)
    details_json: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """A single row (id 1): the last entry's seq and hash, updated with every append."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("id"),)

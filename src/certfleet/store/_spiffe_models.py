"""Tables of the SPIFFE registration (migration 0022_spiffe)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store.models import Base, UtcDateTime

__all__ = ["SpiffeConfigRow", "SpiffeEntryRow", "SpiffeJwtKeyRow", "SpiffeSvidRow"]

_ID = BigInteger().with_variant(Integer, "sqlite")


class SpiffeConfigRow(Base):
    __tablename__ = "spiffe_config"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    trust_domain: Mapped[str] = mapped_column(String(255))
    entries_revision: Mapped[int] = mapped_column(BigInteger)
    bundle_sequence: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class SpiffeEntryRow(Base):
    __tablename__ = "spiffe_entries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    spiffe_id: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[str] = mapped_column(String(300), index=True)
    selectors_json: Mapped[str] = mapped_column(Text)
    ttl_seconds: Mapped[int] = mapped_column(Integer)
    dns_names_json: Mapped[str] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    certificate_id: Mapped[int | None] = mapped_column(
        _ID, ForeignKey("certificates.id", ondelete="SET NULL"), index=True
    )
    svids_issued: Mapped[int] = mapped_column(BigInteger, default=0)
    last_issued_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class SpiffeSvidRow(Base):
    __tablename__ = "spiffe_svids"

    serial: Mapped[str] = mapped_column(String(42), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(32), index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    not_after: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class SpiffeJwtKeyRow(Base):
    __tablename__ = "spiffe_jwt_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, unique=True)
    key_ref: Mapped[str] = mapped_column(String(200))
    public_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    active_from: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    retire_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    publish_until: Mapped[dt.datetime] = mapped_column(UtcDateTime)

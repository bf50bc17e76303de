"""Tables of the lifecycle area (migration 0007_lifecycle): renewal jobs, certificate
lineage, rotation campaigns and their items."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store.models import Base, UtcDateTime

__all__ = ["CampaignItemRow", "CampaignRow", "CertificateLineageRow", "RenewalJobRow"]

_ID = BigInteger().with_variant(Integer, "sqlite")


class RenewalJobRow(Base):
    """One per certificate the planner saw: its primary key makes a second job for the same
    certificate impossible, whichever node plans it."""

    __tablename__ = "renewal_jobs"

    certificate_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("certificates.id", ondelete="CASCADE"), primary_key=True
    )
    serial: Mapped[str] = mapped_column(String(42))
    state: Mapped[str] = mapped_column(String(12))
    renew_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    planned_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    successor_id: Mapped[int | None] = mapped_column(_ID)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    # The worker's query: open states, due first. No index on serial (revision
    # 0019_renewal_plan): ARI overrides reach their jobs through certificates.serial.
    __table_args__ = (Index("ix_renewal_jobs_state_due", "state", "due_at"),)


class CertificateLineageRow(Base):
    __tablename__ = "certificate_lineage"

    certificate_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("certificates.id", ondelete="CASCADE"), primary_key=True
    )
    supersedes_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("certificates.id", ondelete="CASCADE"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(12))
    campaign_id: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class CampaignRow(Base):
    __tablename__ = "rotation_campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    selection: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), index=True)
    total: Mapped[int] = mapped_column(Integer)
    to_key_type: Mapped[str | None] = mapped_column(String(20))
    to_ca_id: Mapped[str | None] = mapped_column(String(32))
    to_profile: Mapped[str | None] = mapped_column(String(60))  # 0026_crypto
    revoke_after_seconds: Mapped[int | None] = mapped_column(BigInteger)
    revoke_reason: Mapped[str] = mapped_column(String(40))
    generate_dir: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)  # revision 0016


class CampaignItemRow(Base):
    __tablename__ = "rotation_items"

    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("rotation_campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    certificate_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("certificates.id", ondelete="CASCADE"), primary_key=True
    )
    serial: Mapped[str] = mapped_column(String(42))
    action: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    successor_id: Mapped[int | None] = mapped_column(_ID)
    reissued_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    deployed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    old_revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    holder: Mapped[str | None] = mapped_column(String(253))  # revision 0016

    __table_args__ = (
        Index("ix_rotation_items_claim", "campaign_id", "state", "due_at"),
        Index("ix_rotation_items_serial", "campaign_id", "serial"),
        Index("ix_rotation_items_successor", "successor_id"),
    )

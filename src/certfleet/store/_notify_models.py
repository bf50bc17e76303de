"""Tables of the notifications area: channels, the event outbox and per-channel deliveries
(migration 0006_notify)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store.models import Base, UtcDateTime

__all__ = ["NotificationChannelRow", "NotificationDeliveryRow", "NotificationEventRow"]

_ID = BigInteger().with_variant(Integer, "sqlite")


class NotificationChannelRow(Base):
    """``options_json``: the channel's options and secret as one envelope sealed under the
    secrets key (:mod:`certfleet.sealing`, bound to this id); ``secret`` stays NULL. A row
    written before sealing holds plaintext options JSON (it starts with ``{``) and its secret
    until the platform next opens and seals it."""

    __tablename__ = "notification_channels"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    team: Mapped[str | None] = mapped_column(String(100), index=True)
    type: Mapped[str] = mapped_column(String(40))
    options_json: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text)
    events_json: Mapped[str] = mapped_column(Text)
    digest: Mapped[bool] = mapped_column(Boolean)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class NotificationEventRow(Base):
    """The outbox: written in the transaction of the change it reports. ``dedup_key`` makes
    producers such as the expiry scan idempotent; ``routed_at`` is set once deliveries exist."""

    __tablename__ = "notification_events"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    team: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(Text)
    payload_json: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    routed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_notification_events_routed_id", "routed_at", "id"),)


class NotificationDeliveryRow(Base):
    """One event to one channel. ``state``: pending, delivered, failed, held (waiting for a
    daily digest) or digested (sent inside one). A dispatcher leases a row
    (``lease_owner``, ``lease_until``) before sending, so two never send the same row."""

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    event_id: Mapped[int] = mapped_column(_ID, ForeignKey("notification_events.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("notification_channels.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    digest_day: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("event_id", "channel_id", name="uq_notification_deliveries_event_channel"),
        Index("ix_notification_deliveries_due", "state", "next_attempt_at"),
    )

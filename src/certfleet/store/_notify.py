"""Repositories of the notifications area: channels and the event outbox with its deliveries
(the ports of ``certfleet.lifecycle.notifications.events``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from certfleet.errors import ConfigurationError, Conflict
from certfleet.lifecycle.notifications.events import (
    ChannelConfig,
    DeliveryState,
    DeliveryView,
    Event,
    LeasedDelivery,
    Route,
    StoredEvent,
    UnroutedEvent,
)
from certfleet.sealing import RowRef, SecretBox
from certfleet.store._notify_models import (
    NotificationChannelRow,
    NotificationDeliveryRow,
    NotificationEventRow,
)
from certfleet.store._sql import dialect_insert, skip_locked

__all__ = ["SqlChannelRepository", "SqlOutboxRepository"]

_D = NotificationDeliveryRow
_E = NotificationEventRow


def channel_ref(channel_id: str) -> RowRef:
    """Where a channel's sealed options and secret live (the envelope's associated data)."""
    return RowRef("notification_channels", "options_json", channel_id)


def seal_channel(secrets: SecretBox, channel_id: str, options: Any, secret: str | None) -> str:
    """The ``options_json`` of a channel: its options and secret in one envelope. The options
    are sealed too: a Slack (or Teams, Discord ...) webhook URL is itself the credential."""
    document = json.dumps({"options": options, "secret": secret}, sort_keys=True)
    return secrets.seal(document.encode(), channel_ref(channel_id))


def _box(secrets: SecretBox | None) -> SecretBox:
    if secrets is None:
        raise ConfigurationError("no secrets key: this store cannot seal or open channel secrets")
    return secrets


def _channel(row: NotificationChannelRow, secrets: SecretBox | None) -> ChannelConfig:
    document = json.loads(_box(secrets).open(row.options_json, channel_ref(row.id)))
    return ChannelConfig(
        id=row.id,
        name=row.name,
        team=row.team,
        type=row.type,
        options=document["options"],
        secret=document["secret"],
        events=tuple(json.loads(row.events_json)),
        digest=row.digest,
        enabled=row.enabled,
        created_at=row.created_at,
    )


def _event(row: NotificationEventRow) -> StoredEvent:
    return StoredEvent(row.id, row.kind, row.subject, row.team, json.loads(row.payload_json), row.occurred_at)


_S = TypeVar("_S", bound="Select[*tuple[Any, ...]]")


class SqlOutboxRepository:
    def __init__(self, session: Session, secrets: SecretBox | None = None) -> None:
        self._session = session
        self._secrets = secrets

    @staticmethod
    def _values(event: Event, routed_at: dt.datetime | None) -> dict[str, Any]:
        return {
            "kind": event.kind.value,
            "team": event.team,
            "subject": event.subject,
            "payload_json": json.dumps(event.payload(), sort_keys=True, separators=(",", ":")),
            "dedup_key": event.dedup_key,
            "occurred_at": event.occurred_at,
            "routed_at": routed_at,
        }

    def _insert_event(self, event: Event, routed_at: dt.datetime | None) -> int | None:
        values = self._values(event, routed_at)
        if event.dedup_key is None:
            row = NotificationEventRow(**values)
            self._session.add(row)
            self._session.flush()
            return row.id
        insert = dialect_insert(self._session, _E)
        stmt = insert.values(values).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(_E.id)
        new_id = self._session.execute(stmt).scalar_one_or_none()
        return int(new_id) if new_id is not None else None

    def add(self, event: Event) -> int | None:
        return self._insert_event(event, None)

    def add_many(self, events: Sequence[Event]) -> None:
        rows = [self._values(event, None) for event in events]
        # NULL keys never conflict: events without a dedup key are all inserted.
        stmt = dialect_insert(self._session, _E).on_conflict_do_nothing(index_elements=["dedup_key"])
        for start in range(0, len(rows), 500):
            self._session.execute(stmt, rows[start : start + 500])

    def add_direct(self, event: Event, channel_id: str, now: dt.datetime) -> int | None:
        event_id = self._insert_event(event, now)
        if event_id is not None:
            self._add_delivery(event_id, channel_id, DeliveryState.PENDING, None, now)
        return event_id

    def _add_delivery(
        self, event_id: int, channel_id: str, state: DeliveryState, day: str | None, now: dt.datetime
    ) -> None:
        self._session.add(
            _D(
                event_id=event_id,
                channel_id=channel_id,
                state=state.value,
                attempts=0,
                next_attempt_at=now,
                digest_day=day,
                created_at=now,
            )
        )

    def existing_keys(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), 500):  # bounded IN lists
            chunk = keys[start : start + 500]
            found.update(
                k for k in self._session.scalars(select(_E.dedup_key).where(_E.dedup_key.in_(chunk))) if k
            )
        return found

    def newest_event_id(self) -> int:
        return int(self._session.scalar(select(func.max(_E.id))) or 0)

    def unrouted(self, limit: int, up_to: int) -> Sequence[UnroutedEvent]:
        stmt = (
            select(_E.id, _E.kind, _E.team, _E.occurred_at)
            .where(_E.routed_at.is_(None), _E.id <= up_to)
            .order_by(_E.id)
            .limit(limit)
        )
        rows = self._session.execute(skip_locked(self._session, stmt))
        return [UnroutedEvent(row.id, row.kind, row.team, row.occurred_at) for row in rows]

    def route(self, routes: Sequence[Route], now: dt.datetime) -> None:
        # Core statements, not ORM objects: routing runs once per certificate issued.
        deliveries = [
            {
                "event_id": event_id,
                "channel_id": channel_id,
                "state": (DeliveryState.HELD if day is not None else DeliveryState.PENDING).value,
                "attempts": 0,
                "next_attempt_at": now,
                "digest_day": day,
                "created_at": now,
            }
            for event_id, targets in routes
            for channel_id, day in targets
        ]
        if deliveries:
            self._session.execute(insert(_D), deliveries)
        ids = [event_id for event_id, _ in routes]
        for start in range(0, len(ids), 500):  # bounded IN lists
            chunk = ids[start : start + 500]
            self._session.execute(update(_E).where(_E.id.in_(chunk)).values(routed_at=now))

    def route_all_unrouted(self, now: dt.datetime, up_to: int) -> int:
        result = self._session.execute(
            update(_E).where(_E.routed_at.is_(None), _E.id <= up_to).values(routed_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def claim(
        self, owner: str, now: dt.datetime, lease_until: dt.datetime, limit: int
    ) -> Sequence[LeasedDelivery]:
        due = (
            select(_D.id)
            .where(
                _D.state == DeliveryState.PENDING.value,
                _D.next_attempt_at <= now,
                or_(_D.lease_until.is_(None), _D.lease_until <= now),
            )
            .order_by(_D.next_attempt_at, _D.id)
            .limit(limit)
        )
        ids = list(self._session.scalars(skip_locked(self._session, due)))
        if not ids:
            return []
        self._session.execute(
            update(_D).where(_D.id.in_(ids)).values(lease_owner=owner, lease_until=lease_until)
        )
        rows = self._session.execute(
            select(_D.id, _D.attempts, _E, NotificationChannelRow)
            .join(_E, _E.id == _D.event_id)
            .join(NotificationChannelRow, NotificationChannelRow.id == _D.channel_id)
            .where(_D.id.in_(ids))
            .order_by(_D.next_attempt_at, _D.id)
        )
        return [
            LeasedDelivery(
                delivery_id, attempts, _event(event), _channel(channel, self._secrets), lease_until
            )
            for delivery_id, attempts, event, channel in rows
        ]

    def _finish(self, delivery_id: int, owner: str, **values: Any) -> bool:
        result = self._session.execute(
            update(_D)
            .where(_D.id == delivery_id, _D.lease_owner == owner)
            .values(attempts=_D.attempts + 1, lease_owner=None, lease_until=None, **values)
        )
        return bool(getattr(result, "rowcount", 0))

    def mark_delivered(self, delivery_id: int, owner: str, now: dt.datetime) -> bool:
        return self._finish(
            delivery_id, owner, state=DeliveryState.DELIVERED.value, delivered_at=now, last_error=None
        )

    def mark_retry(self, delivery_id: int, owner: str, next_attempt_at: dt.datetime, error: str) -> bool:
        return self._finish(delivery_id, owner, next_attempt_at=next_attempt_at, last_error=error[:2000])

    def mark_failed(self, delivery_id: int, owner: str, error: str) -> bool:
        return self._finish(delivery_id, owner, state=DeliveryState.FAILED.value, last_error=error[:2000])

    def held_digests(self, before_day: str) -> Sequence[tuple[str, str]]:
        stmt = (
            select(_D.channel_id, _D.digest_day)
            .where(_D.state == DeliveryState.HELD.value, _D.digest_day < before_day)
            .distinct()
            .order_by(_D.digest_day, _D.channel_id)
        )
        return [(channel, str(day)) for channel, day in self._session.execute(stmt)]

    def take_held(self, channel_id: str, day: str) -> Sequence[StoredEvent]:
        stmt = (
            select(_D.id, _E)
            .join(_E, _E.id == _D.event_id)
            .where(_D.state == DeliveryState.HELD.value, _D.channel_id == channel_id, _D.digest_day == day)
            .order_by(_E.id)
        )
        rows = list(self._session.execute(skip_locked(self._session, stmt)))
        if not rows:
            return []
        ids = [delivery_id for delivery_id, _ in rows]
        self._session.execute(update(_D).where(_D.id.in_(ids)).values(state=DeliveryState.DIGESTED.value))
        return [_event(event) for _, event in rows]

    def deliveries(self, state: str | None, limit: int) -> Sequence[DeliveryView]:
        stmt = (
            select(_D, _E.kind, _E.subject).join(_E, _E.id == _D.event_id).order_by(_D.id.desc()).limit(limit)
        )
        if state is not None:
            stmt = stmt.where(_D.state == state)
        return [
            DeliveryView(
                d.id,
                d.event_id,
                kind,
                subject,
                d.channel_id,
                d.state,
                d.attempts,
                d.next_attempt_at,
                d.last_error,
                d.delivered_at,
            )
            for d, kind, subject in self._session.execute(stmt)
        ]


class SqlChannelRepository:
    """Channels with their options and secret sealed (``options_json`` is an envelope and
    ``secret`` stays NULL: see :func:`seal_channel`)."""

    def __init__(self, session: Session, secrets: SecretBox | None = None) -> None:
        self._session = session
        self._secrets = secrets

    def add(self, channel: ChannelConfig) -> None:
        if self._session.get(NotificationChannelRow, channel.id) is not None:
            raise Conflict(f"channel {channel.id} already exists")
        self._session.add(
            NotificationChannelRow(
                id=channel.id,
                name=channel.name,
                team=channel.team,
                type=channel.type,
                options_json=seal_channel(
                    _box(self._secrets), channel.id, dict(channel.options), channel.secret
                ),
                secret=None,
                events_json=json.dumps(list(channel.events)),
                digest=channel.digest,
                enabled=channel.enabled,
                created_at=channel.created_at,
            )
        )
        self._session.flush()

    def get(self, channel_id: str) -> ChannelConfig | None:
        row = self._session.get(NotificationChannelRow, channel_id)
        return _channel(row, self._secrets) if row is not None else None

    def list(self, team: str | None = None) -> Sequence[ChannelConfig]:
        stmt = select(NotificationChannelRow).order_by(
            NotificationChannelRow.created_at, NotificationChannelRow.id
        )
        if team is not None:
            stmt = stmt.where(NotificationChannelRow.team == team)
        return [_channel(r, self._secrets) for r in self._session.scalars(stmt)]

    def remove(self, channel_id: str) -> bool:
        # Deliveries go with the channel (ON DELETE CASCADE; SQLite enforces it with
        # PRAGMA foreign_keys, which certfleet's engine sets): nowhere left to send them.
        self._session.execute(delete(_D).where(_D.channel_id == channel_id))
        result = self._session.execute(
            delete(NotificationChannelRow).where(NotificationChannelRow.id == channel_id)
        )
        return bool(getattr(result, "rowcount", 0))

"""Notification events, the transactional outbox they are written to, and the storage
interfaces notifications need (``certfleet.store`` implements them).

A service that changes something calls :func:`emit` with its own unit of work, so the event
is committed with the change or not at all (the transactional outbox pattern): no event is
announced for a change that rolled back, none lost for a change that committed. Delivery to
channels (webhook, email, Slack) happens later, in ``certfleet.lifecycle.notifications``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from certfleet.audit import AuditRepository
from certfleet.clock import iso
from certfleet.discovery.records import LocationRepository
from certfleet.inventory import CertificateRecord, CertificateRepository

__all__ = [
    "ChannelConfig",
    "ChannelRepository",
    "DeliveryState",
    "DeliveryView",
    "Event",
    "EventKind",
    "LeasedDelivery",
    "NotifyUnitOfWork",
    "NotifyUnitOfWorkFactory",
    "OutboxRepository",
    "Route",
    "StoredEvent",
    "UnroutedEvent",
    "certificate_event",
    "emit",
]


class EventKind(enum.StrEnum):
    ISSUED = "issued"
    RENEWED = "renewed"
    RENEWAL_FAILED = "renewal-failed"
    REVOKED = "revoked"
    EXPIRING = "expiring"
    POLICY_VIOLATION = "policy-violation"
    DISCOVERED_UNKNOWN = "discovered-unknown"
    ROTATION_PROGRESS = "rotation-progress"
    # A campaign's deadline passed before the certificate was replaced: revoked anyway.
    ROTATION_OVERDUE = "rotation-overdue"
    # Internal kinds: never routed by team, addressed to one channel.
    DIGEST = "digest"
    TEST = "test"

    @classmethod
    def public(cls) -> tuple[EventKind, ...]:
        """The kinds a channel may subscribe to."""
        return tuple(k for k in cls if k not in (cls.DIGEST, cls.TEST))


@dataclass(frozen=True)
class Event:
    """Something worth telling a team. ``subject`` names what it is about (a serial, a rule,
    a campaign id); ``certificate`` is the inventory's JSON form of the certificate concerned
    and ``locations`` where it was seen; ``dedup_key`` makes a producer idempotent: a second
    event with the same key is dropped."""

    kind: EventKind
    subject: str
    occurred_at: dt.datetime
    team: str | None = None
    certificate: Mapping[str, Any] | None = None
    locations: tuple[Mapping[str, Any], ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    dedup_key: str | None = None

    def payload(self) -> dict[str, Any]:
        """The stored JSON document: what every channel renders."""
        return {
            "event": self.kind.value,
            "subject": self.subject,
            "occurred_at": iso(self.occurred_at),
            "team": self.team,
            "owner": {"team": self.team},
            "certificate": dict(self.certificate) if self.certificate is not None else None,
            "locations": [dict(loc) for loc in self.locations],
            "details": dict(self.details),
        }


def certificate_event(
    uow: NotifyUnitOfWork,
    kind: EventKind,
    record: CertificateRecord,
    now: dt.datetime,
    *,
    details: Mapping[str, Any] | None = None,
    dedup_key: str | None = None,
) -> Event:
    """An event about one inventory certificate, with the locations discovery saw it at."""
    locations: tuple[Mapping[str, Any], ...] = ()
    if record.id is not None:
        found = uow.locations.for_certificate(record.id)
        locations = tuple(loc.to_dict() for loc in found if loc.gone_at is None)
    return Event(
        kind=kind,
        subject=record.serial,
        occurred_at=now,
        team=record.team,
        certificate=record.to_dict(now),
        locations=locations,
        details=dict(details or {}),
        dedup_key=dedup_key,
    )


def emit(uow: NotifyUnitOfWork, event: Event) -> int | None:
    """Write ``event`` to the outbox inside the caller's transaction. Returns its id, or None
    when an event with the same ``dedup_key`` already exists."""
    return uow.outbox.add(event)


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    HELD = "held"  # an expiring notice waiting for its channel's daily digest
    DIGESTED = "digested"


@dataclass(frozen=True)
class ChannelConfig:
    """A configured channel. ``team`` None receives every team's events; ``events`` empty
    means every public kind; ``digest`` gathers expiring notices into one message a day."""

    id: str
    name: str
    team: str | None
    type: str
    options: Mapping[str, Any]
    secret: str | None
    events: tuple[str, ...]
    digest: bool
    enabled: bool
    created_at: dt.datetime

    def wants(self, kind: str, team: str | None) -> bool:
        if not self.enabled or kind in (EventKind.DIGEST, EventKind.TEST):
            return False
        if self.team is not None and self.team != team:
            return False
        return not self.events or kind in self.events

    def to_dict(self) -> dict[str, Any]:
        """Without options (a Slack URL is a credential) or the secret: only whether one is
        set. Listings add the channel type's redacted target."""
        return {
            "id": self.id,
            "name": self.name,
            "team": self.team,
            "type": self.type,
            "secret": self.secret is not None,
            "events": list(self.events) or ["all"],
            "digest": self.digest,
            "enabled": self.enabled,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class StoredEvent:
    id: int
    kind: str
    subject: str
    team: str | None
    payload: Mapping[str, Any]
    occurred_at: dt.datetime


@dataclass(frozen=True)
class UnroutedEvent:
    """What routing needs of an event: no subject, no payload (nothing to parse)."""

    id: int
    kind: str
    team: str | None
    occurred_at: dt.datetime


Route = tuple[int, Sequence[tuple[str, str | None]]]
"""An event id and its deliveries to create: (channel id, digest day or None) each."""


@dataclass(frozen=True)
class LeasedDelivery:
    """A delivery this dispatcher holds the lease of until ``lease_until``."""

    id: int
    attempts: int
    event: StoredEvent
    channel: ChannelConfig
    lease_until: dt.datetime


@dataclass(frozen=True)
class DeliveryView:
    id: int
    event_id: int
    kind: str
    subject: str
    channel_id: str
    state: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    delivered_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "event": self.kind,
            "subject": self.subject,
            "channel": self.channel_id,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "last_error": self.last_error,
            "delivered_at": iso(self.delivered_at),
        }


class OutboxRepository(Protocol):
    def add(self, event: Event) -> int | None:
        """Insert; None when ``dedup_key`` is taken (the insert is skipped, not failed)."""
        ...

    def add_many(self, events: Sequence[Event]) -> None:
        """Insert several events in a few statements (a scan announces hundreds at once);
        one whose ``dedup_key`` is taken is skipped, as :meth:`add` skips it."""
        ...

    def add_direct(self, event: Event, channel_id: str, now: dt.datetime) -> int | None:
        """Insert an event already routed, with one pending delivery to ``channel_id``."""
        ...

    def existing_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these dedup keys are taken."""
        ...

    def newest_event_id(self) -> int:
        """The highest event id committed so far (0 when there is none)."""
        ...

    def unrouted(self, limit: int, up_to: int) -> Sequence[UnroutedEvent]:
        """Oldest events without deliveries yet, none newer than ``up_to``, locked against
        other dispatchers."""
        ...

    def route(self, routes: Sequence[Route], now: dt.datetime) -> None:
        """Create every delivery of these events and mark them all routed, in a few
        statements whatever their number (an event no channel wants only gets its mark)."""
        ...

    def route_all_unrouted(self, now: dt.datetime, up_to: int) -> int:
        """Mark every unrouted event up to id ``up_to`` routed, with no delivery, in one
        statement; for when no channel is enabled. Returns how many."""
        ...

    def claim(
        self, owner: str, now: dt.datetime, lease_until: dt.datetime, limit: int
    ) -> Sequence[LeasedDelivery]:
        """Lease due pending deliveries (none leased by another unexpired lease)."""
        ...

    def mark_delivered(self, delivery_id: int, owner: str, now: dt.datetime) -> bool: ...

    def mark_retry(self, delivery_id: int, owner: str, next_attempt_at: dt.datetime, error: str) -> bool: ...

    def mark_failed(self, delivery_id: int, owner: str, error: str) -> bool: ...

    def held_digests(self, before_day: str) -> Sequence[tuple[str, str]]:
        """(channel id, day) pairs with held notices of a day before ``before_day``."""
        ...

    def take_held(self, channel_id: str, day: str) -> Sequence[StoredEvent]:
        """The held notices of one channel and day, now marked digested."""
        ...

    def deliveries(self, state: str | None, limit: int) -> Sequence[DeliveryView]: ...


class ChannelRepository(Protocol):
    def add(self, channel: ChannelConfig) -> None: ...

    def get(self, channel_id: str) -> ChannelConfig | None: ...

    def list(self, team: str | None = None) -> Sequence[ChannelConfig]: ...

    def remove(self, channel_id: str) -> bool: ...


class NotifyUnitOfWork(Protocol):
    """The repositories notifications use, in one transaction: the consumer's own narrow
    view of the services' unit of work, which satisfies it."""

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def notify_channels(self) -> ChannelRepository: ...

    @property
    def certificates(self) -> CertificateRepository: ...

    @property
    def locations(self) -> LocationRepository: ...

    @property
    def audit(self) -> AuditRepository: ...


class NotifyUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> AbstractContextManager[NotifyUnitOfWork]: ...

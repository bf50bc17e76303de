"""Notifications as an application service: channels per team, a test send, the expiry scan
and one dispatch pass (each a job of the scheduler ``certfleet serve`` runs). What other
services need to announce a change is here too: :func:`emit` an :class:`Event` with their own
unit of work, so it commits with the change (the transactional outbox). The domain (events,
channel plugins, rendering, the dispatcher) lives in :mod:`certfleet.lifecycle.notifications`."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.errors import InvalidInput, NotFound
from certfleet.lifecycle.notifications._channel import ChannelContext, DeliveryFailed, Notice
from certfleet.lifecycle.notifications.dispatcher import Dispatcher, DispatchReport, DispatchSettings
from certfleet.lifecycle.notifications.events import (
    ChannelConfig,
    DeliveryState,
    DeliveryView,
    Event,
    EventKind,
    NotifyUnitOfWorkFactory,
    certificate_event,
    emit,
)
from certfleet.lifecycle.notifications.expiring import DEFAULT_THRESHOLDS_DAYS, expiring_scan
from certfleet.lifecycle.notifications.registry import available, channel_type

__all__ = [
    "MAX_DELIVERIES",
    "Event",
    "EventKind",
    "Notifications",
    "TestOutcome",
    "certificate_event",
    "emit",
    "listed",
]

MAX_DELIVERIES = 10_000

_TEAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class TestOutcome:
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


def listed(channel: ChannelConfig) -> dict[str, Any]:
    """A channel as listings show it: :meth:`ChannelConfig.to_dict` and the redacted target."""
    row = channel.to_dict()
    kind = channel_type(channel.type)
    row["target"] = kind.redacted(channel.options) if kind is not None else ""
    return row


class Notifications:
    def __init__(
        self,
        uow: NotifyUnitOfWorkFactory,
        clock: Clock,
        *,
        settings: DispatchSettings | None = None,
        thresholds_days: Sequence[int] = DEFAULT_THRESHOLDS_DAYS,
        http_client: Callable[[], httpx.Client] | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.thresholds_days = tuple(sorted(set(thresholds_days), reverse=True))
        if any(t < 1 for t in self.thresholds_days):
            raise InvalidInput("expiry thresholds must be whole days, at least 1")
        self.dispatcher = Dispatcher(uow, clock, settings, http_client=http_client)

    def add_channel(
        self,
        *,
        type_name: str,
        options: Mapping[str, Any],
        team: str | None,
        actor: str,
        secret: str | None = None,
        name: str | None = None,
        events: Sequence[str] = (),
        digest: bool = False,
    ) -> ChannelConfig:
        kind = channel_type(type_name)
        if kind is None:
            raise InvalidInput(
                f"unknown channel type {type_name!r}: expected one of {', '.join(available())}"
            )
        parsed = kind.parse_options(options)
        if secret is not None and not kind.takes_secret:
            raise InvalidInput(f"a {type_name} channel takes no secret")
        if secret is not None and not secret.strip():
            raise InvalidInput("the secret is empty")
        if team is not None and not _TEAM.match(team):
            raise InvalidInput(f"bad team {team!r}: letters, digits, '.', '_' or '-'")
        public = {k.value for k in EventKind.public()}
        for event in events:
            if event not in public:
                raise InvalidInput(f"unknown event {event!r}: expected one of {', '.join(sorted(public))}")
        if digest and events and EventKind.EXPIRING.value not in events:
            raise InvalidInput("--digest gathers expiring notices: the channel must receive 'expiring'")
        channel_id = secrets.token_hex(8)
        channel = ChannelConfig(
            id=channel_id,
            name=(name or f"{type_name}-{channel_id[:6]}").strip()[:100],
            team=team,
            type=type_name,
            options=parsed,
            secret=secret.strip() if secret else None,
            events=tuple(dict.fromkeys(events)),
            digest=digest,
            enabled=True,
            created_at=self._clock.now(),
        )
        with self._uow() as uow:
            uow.notify_channels.add(channel)
            AuditLog(uow.audit, self._clock).record(
                actor,
                "notify.channel.added",
                channel_id,
                {"team": team, "type": type_name, "events": list(channel.events), "digest": digest},
            )
        return channel

    def channels(self, team: str | None = None) -> Sequence[ChannelConfig]:
        with self._uow(read_only=True) as uow:
            return uow.notify_channels.list(team)

    def channel_listing(self, team: str | None = None) -> list[dict[str, Any]]:
        """Channels as listed (CLI and API alike): no secret, only whether one is set, and the
        type's redacted ``target``: a Slack webhook URL is itself the credential, so a listing
        shows only where it points."""
        return [listed(channel) for channel in self.channels(team)]

    def channel(self, channel_id: str) -> ChannelConfig:
        with self._uow(read_only=True) as uow:
            found = uow.notify_channels.get(channel_id)
        if found is None:
            raise NotFound(f"no notification channel {channel_id!r}")
        return found

    def remove_channel(self, channel_id: str, *, actor: str) -> None:
        with self._uow() as uow:
            if not uow.notify_channels.remove(channel_id):
                raise NotFound(f"no notification channel {channel_id!r}")
            AuditLog(uow.audit, self._clock).record(actor, "notify.channel.removed", channel_id, {})

    def test_channel(self, channel_id: str) -> TestOutcome:
        """Send a ``test`` event now, outside the outbox, and say what the receiver did."""
        channel = self.channel(channel_id)
        kind = channel_type(channel.type)
        if kind is None:
            return TestOutcome(False, f"unknown channel type {channel.type!r}")
        event = Event(
            EventKind.TEST, "test", self._clock.now(), team=channel.team, details={"channel": channel.id}
        )
        settings = self.dispatcher.settings
        with httpx.Client(follow_redirects=False, trust_env=False) as http:
            try:
                detail = kind(
                    channel.options, channel.secret, ChannelContext(http, settings.timeout_seconds)
                ).send(Notice(0, EventKind.TEST.value, event.payload()))
            except DeliveryFailed as failure:
                return TestOutcome(False, failure.reason)
        return TestOutcome(True, detail)

    def deliveries(self, state: str | None = None, limit: int = 100) -> Sequence[DeliveryView]:
        """The newest ``limit`` deliveries (1 to 10,000), of one ``state`` or all."""
        if state is not None and state not in {s.value for s in DeliveryState}:
            raise InvalidInput(
                f"unknown state {state!r}: expected one of {', '.join(s.value for s in DeliveryState)}"
            )
        if not 1 <= limit <= MAX_DELIVERIES:
            raise InvalidInput(f"limit must be between 1 and {MAX_DELIVERIES}")
        with self._uow(read_only=True) as uow:
            return uow.outbox.deliveries(state, limit)

    def expiring_scan(self, now: dt.datetime | None = None) -> int:
        return expiring_scan(self._uow, now or self._clock.now(), self.thresholds_days)

    def dispatch_once(self, now: dt.datetime | None = None) -> DispatchReport:
        return self.dispatcher.dispatch_once(now)

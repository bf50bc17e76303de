"""The dispatcher: turns outbox events into deliveries and sends them, exactly once per
receiver that answers 2xx.

One :meth:`Dispatcher.dispatch_once` call:

1. routes new events to the channels that want them (one delivery row per channel);
2. gathers the held ``expiring`` notices of past days into one digest per channel;
3. leases due deliveries (committed before anything is sent, so a second dispatcher, on
   this node or another, skips them), sends each, and records the outcome at once: a 2xx is
   marked delivered and never sent again; a failure is retried with exponential backoff.

A crash between a receiver's 2xx and its recording is the one window that can repeat a
delivery (after the lease expires); the body's event ``id`` lets a receiver drop it.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx

from certfleet.clock import Clock
from certfleet.lifecycle.notifications._channel import ChannelContext, DeliveryFailed, Notice
from certfleet.lifecycle.notifications.events import Event, EventKind, LeasedDelivery, NotifyUnitOfWorkFactory
from certfleet.lifecycle.notifications.registry import channel_type

__all__ = ["DispatchReport", "DispatchSettings", "Dispatcher", "backoff"]

_log = logging.getLogger("certfleet.notifications")


@dataclass(frozen=True)
class DispatchSettings:
    """``retry_base`` doubles per failed attempt up to ``retry_cap``; after ``give_up_after``
    from the event a delivery is marked failed (a week survives a long receiver outage).
    ``lease`` must outlast one batch: ``batch_size`` x ``timeout_seconds`` and then some."""

    batch_size: int = 20
    max_batches: int = 50
    route_batch: int = 500
    timeout_seconds: float = 10.0
    lease: dt.timedelta = dt.timedelta(minutes=5)
    retry_base: dt.timedelta = dt.timedelta(seconds=30)
    retry_cap: dt.timedelta = dt.timedelta(hours=1)
    give_up_after: dt.timedelta = dt.timedelta(days=7)


def backoff(attempts: int, settings: DispatchSettings) -> dt.timedelta:
    """Delay before the next try after ``attempts`` failed ones: 30 s, 1 min, 2 min ... 1 h."""
    exponent = min(max(attempts - 1, 0), 20)
    return min(settings.retry_base * (1 << exponent), settings.retry_cap)


@dataclass
class DispatchReport:
    routed: int = 0
    digests: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "routed": self.routed,
            "digests": self.digests,
            "delivered": self.delivered,
            "retried": self.retried,
            "failed": self.failed,
            "errors": list(self.errors),
        }


class Dispatcher:
    def __init__(
        self,
        uow: NotifyUnitOfWorkFactory,
        clock: Clock,
        settings: DispatchSettings | None = None,
        *,
        http_client: Callable[[], httpx.Client] | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.settings = settings or DispatchSettings()
        self._http_client = http_client or (lambda: httpx.Client(follow_redirects=False, trust_env=False))

    def dispatch_once(self, now: dt.datetime | None = None) -> DispatchReport:
        now = now or self._clock.now()
        report = DispatchReport()
        report.routed = self._route(now)
        report.digests = self._digest(now)
        # The HTTP client (its TLS context costs milliseconds of CPU) only once there is
        # something to send: most passes of the 5-second job lease nothing.
        with ExitStack() as stack:
            context: ChannelContext | None = None
            for _ in range(self.settings.max_batches):
                owner = secrets.token_hex(8)
                with self._uow() as uow:
                    leased = uow.outbox.claim(owner, now, now + self.settings.lease, self.settings.batch_size)
                if not leased:
                    break
                if context is None:
                    http = stack.enter_context(self._http_client())
                    context = ChannelContext(http, self.settings.timeout_seconds)
                for delivery in leased:
                    self._deliver(delivery, owner, context, now, report)
        return report

    def _route(self, now: dt.datetime) -> int:
        """Route in batches of ``route_batch``: one transaction and a few statements each.

        Every certificate issued adds an event, so this runs at the pace of issuance: an
        event no channel wants costs a four-column read and its id in one UPDATE, and with
        no channel enabled at all the whole backlog is marked in one statement without
        being read. Deliveries are inserted in the same transaction as the marks, so an
        event is either routed with all its deliveries or not at all (at least once).

        Only events already committed when the channels are read are routed in a pass: on
        PostgreSQL (read committed) each statement sees what committed before it, so a
        channel added, then an event it wants, both between the channel read and the event
        read, would otherwise route that event past the channel, with no delivery."""
        routed = 0
        while True:
            with self._uow() as uow:
                up_to = uow.outbox.newest_event_id()
                channels = [c for c in uow.notify_channels.list() if c.enabled]
                if not channels:
                    return routed + uow.outbox.route_all_unrouted(now, up_to)
                events = uow.outbox.unrouted(self.settings.route_batch, up_to)
                if not events:
                    return routed
                routes = []
                for event in events:
                    digest_day = event.occurred_at.date().isoformat()
                    targets = [
                        (c.id, digest_day if c.digest and event.kind == EventKind.EXPIRING else None)
                        for c in channels
                        if c.wants(event.kind, event.team)
                    ]
                    routes.append((event.id, targets))
                uow.outbox.route(routes, now)
                routed += len(events)

    def _digest(self, now: dt.datetime) -> int:
        today = now.date().isoformat()
        with self._uow(read_only=True) as uow:
            pending = uow.outbox.held_digests(today)
        made = 0
        for channel_id, day in pending:
            with self._uow() as uow:
                items = uow.outbox.take_held(channel_id, day)
                channel = uow.notify_channels.get(channel_id)
                if not items or channel is None:
                    continue
                event = Event(
                    kind=EventKind.DIGEST,
                    subject=f"{len(items)} certificates expiring",
                    occurred_at=now,
                    team=channel.team,
                    details={"day": day, "items": [dict(item.payload) for item in items]},
                    # Keyed by the first notice: notices routed late for a day already
                    # digested make a second digest rather than vanish.
                    dedup_key=f"digest:{channel_id}:{day}:{items[0].id}",
                )
                uow.outbox.add_direct(event, channel_id, now)
                made += 1
        return made

    def _deliver(
        self,
        delivery: LeasedDelivery,
        owner: str,
        context: ChannelContext,
        now: dt.datetime,
        report: DispatchReport,
    ) -> None:
        if self._clock.now() >= delivery.lease_until:
            return  # the batch outlived its lease: another dispatcher may hold this row now
        notice = Notice(delivery.event.id, delivery.event.kind, delivery.event.payload, delivery.id)
        kind = channel_type(delivery.channel.type)
        try:
            if kind is None:
                raise DeliveryFailed(
                    f"unknown channel type {delivery.channel.type!r}: is its plugin installed?",
                    retryable=True,
                )
            outcome = kind(delivery.channel.options, delivery.channel.secret, context).send(notice)
        except DeliveryFailed as failure:
            self._failed(delivery, owner, failure, now, report)
            return
        except Exception as exc:  # noqa: BLE001 - a plugin bug is one failed delivery, not a dead loop
            self._failed(
                delivery, owner, DeliveryFailed(f"{type(exc).__name__}: {exc}", retryable=True), now, report
            )
            return
        with self._uow() as uow:
            uow.outbox.mark_delivered(delivery.id, owner, self._clock.now())
        report.delivered += 1
        _log.info("delivered event %s to channel %s: %s", delivery.event.id, delivery.channel.id, outcome)

    def _failed(
        self,
        delivery: LeasedDelivery,
        owner: str,
        failure: DeliveryFailed,
        now: dt.datetime,
        report: DispatchReport,
    ) -> None:
        attempts = delivery.attempts + 1
        delay = backoff(attempts, self.settings)
        if failure.retry_after_seconds is not None:
            delay = max(delay, dt.timedelta(seconds=failure.retry_after_seconds))
        next_at = now + delay
        expired = next_at > delivery.event.occurred_at + self.settings.give_up_after
        report.errors.append(f"channel {delivery.channel.id}: {failure.reason}")
        with self._uow() as uow:
            if failure.retryable and not expired:
                uow.outbox.mark_retry(delivery.id, owner, next_at, failure.reason)
                report.retried += 1
                return
            why = (
                failure.reason
                if not failure.retryable
                else f"gave up after {attempts} attempts: {failure.reason}"
            )
            uow.outbox.mark_failed(delivery.id, owner, why)
            report.failed += 1

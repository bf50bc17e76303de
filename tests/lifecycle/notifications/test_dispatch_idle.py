"""The dispatch job runs every 5 seconds on every node and usually has nothing to send: it
makes its HTTP client (a TLS context: milliseconds of CPU) only once it has leased a delivery."""

from __future__ import annotations

import httpx

from certfleet.app import Platform
from certfleet.lifecycle.notifications.dispatcher import Dispatcher, DispatchReport
from certfleet.lifecycle.notifications.events import Event, EventKind


def _dispatch(platform: Platform, events: int, prefix: str) -> tuple[DispatchReport, int]:
    """Queue ``events`` events of team a, run one dispatch pass; (its report, clients made)."""
    now = platform.clock.now()
    with platform.store.unit_of_work() as uow:
        uow.outbox.add_many([Event(EventKind.ISSUED, f"{prefix}-{i}", now, team="a") for i in range(events)])
    made: list[int] = []

    def client() -> httpx.Client:
        made.append(1)
        return httpx.Client(trust_env=False, timeout=1)

    report = Dispatcher(platform.store.unit_of_work, platform.clock, http_client=client).dispatch_once()
    return report, len(made)


def test_a_pass_with_nothing_to_deliver_makes_no_http_client(platform: Platform) -> None:
    # Given events that no channel wants (none exists), when the dispatcher runs a pass
    report, clients = _dispatch(platform, 3, "idle")
    # Then the events are routed and no client was made
    assert report.routed == 3
    assert clients == 0


def test_a_pass_with_deliveries_makes_one_client_for_all_of_them(platform: Platform) -> None:
    # Given a channel (an address nothing listens on) that wants the next two events
    platform.notifications.add_channel(
        type_name="webhook", options={"url": "http://127.0.0.1:9/"}, team="a", actor="test"
    )
    # When the dispatcher runs a pass
    report, clients = _dispatch(platform, 2, "busy")
    # Then both deliveries were attempted (nothing listens: retried later) through one client
    assert report.routed == 2
    assert report.delivered + report.retried + report.failed == 2, report
    assert clients == 1

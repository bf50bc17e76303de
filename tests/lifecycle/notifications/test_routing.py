"""Routing the outbox costs a few statements per batch, not a few per event: every
certificate issued adds an event, so routing runs at the pace of issuance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from certfleet.app import Platform
from certfleet.lifecycle.notifications.events import Event, EventKind
from certfleet.store import Database
from certfleet.store._notify import SqlChannelRepository
from certfleet.x509 import KeyType
from tests.conftest import FakeClock, make_platform, truncate_all
from tests.services.snapshot import rows

EVENTS = 60


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    """Every SQL statement the engine runs inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def _events(platform: Platform, count: int, team: str = "a") -> None:
    now = platform.clock.now()
    with platform.store.unit_of_work() as uow:
        uow.outbox.add_many(
            [Event(EventKind.ISSUED, f"serial-{team}-{i}", now, team=team) for i in range(count)]
        )


def _channel(platform: Platform, team: str) -> str:
    channel = platform.notifications.add_channel(
        type_name="webhook", options={"url": "http://127.0.0.1:9/"}, team=team, actor="test"
    )
    return channel.id


def _unrouted(platform: Platform) -> int:
    return int(
        rows(platform.database, "SELECT count(*) FROM notification_events WHERE routed_at IS NULL")[0][0]
    )


def test_events_no_channel_can_want_are_marked_in_one_statement(platform: Platform) -> None:
    # Given a backlog of events and no notification channel at all
    _events(platform, EVENTS)
    # When the dispatcher routes them
    with _statements(platform.database) as statements:
        report = platform.notifications.dispatch_once()
    # Then all are routed with no delivery, by one UPDATE (no per-event statement)
    assert report.routed == EVENTS and _unrouted(platform) == 0
    assert rows(platform.database, "SELECT count(*) FROM notification_deliveries") == [(0,)]
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in statements) == 1
    assert len(statements) < 12


def test_a_batch_of_events_is_routed_in_a_fixed_number_of_statements(platform: Platform) -> None:
    # Given a channel for team a, and events of team a and of team b (which no channel wants)
    channel = _channel(platform, "a")
    _events(platform, EVENTS, "a")
    _events(platform, EVENTS, "b")
    # When the dispatcher routes them (its delivery attempts go to a closed port: retried later)
    with _statements(platform.database) as statements:
        platform.notifications.dispatcher._route(platform.clock.now())
    # Then every event is routed, team a's with exactly one delivery each, team b's with none
    assert _unrouted(platform) == 0
    assert rows(
        platform.database,
        "SELECT e.team, count(*), count(DISTINCT e.id) FROM notification_deliveries d"
        " JOIN notification_events e ON e.id = d.event_id WHERE d.channel_id = :c AND d.state = 'pending'"
        " GROUP BY e.team",
        c=channel,
    ) == [("a", EVENTS, EVENTS)]
    # And 120 events took a handful of statements, not two or three per event
    assert len(statements) < 15, statements


def test_events_after_a_channel_appears_are_delivered_to_it(platform: Platform) -> None:
    # Events routed while no channel existed are not replayed; the next ones reach the channel
    _events(platform, 3)
    platform.notifications.dispatcher._route(platform.clock.now())
    channel = _channel(platform, "a")
    _events(platform, 2)
    assert platform.notifications.dispatcher._route(platform.clock.now()) == 2
    assert rows(
        platform.database, "SELECT count(*) FROM notification_deliveries WHERE channel_id = :c", c=channel
    ) == [(2,)]


@pytest.fixture
def pg_platform(pg_database_url: str, tmp_path: Path) -> Iterator[Platform]:
    truncate_all(pg_database_url)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    platform = make_platform(data, pg_database_url, FakeClock())
    platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
    yield platform
    platform.close()


def test_an_event_committed_after_the_channel_read_is_left_for_the_next_pass(
    pg_platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a dispatcher on PostgreSQL that has just read an empty channel list when another
    # node adds a channel, then an event that channel wants (both committed mid-pass)
    platform = pg_platform
    added: list[str] = []
    read_channels = SqlChannelRepository.list

    def read_then_another_node_writes(self: SqlChannelRepository, team: str | None = None) -> Any:
        found = read_channels(self, team)
        if not added:
            added.append(_channel(platform, "a"))
            _events(platform, 1, "a")
        return found

    monkeypatch.setattr(SqlChannelRepository, "list", read_then_another_node_writes)
    # When that pass routes (no channel seen: the backlog is marked in one statement)
    platform.notifications.dispatcher._route(platform.clock.now())
    monkeypatch.undo()
    # Then the new event is not marked past the channel: the next pass gives it its delivery
    assert _unrouted(platform) == 1
    assert platform.notifications.dispatcher._route(platform.clock.now()) == 1
    assert rows(
        platform.database, "SELECT count(*) FROM notification_deliveries WHERE channel_id = :c", c=added[0]
    ) == [(1,)]

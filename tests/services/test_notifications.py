"""The outbox and the dispatcher against real receivers: every event arrives once, across a
receiver that is down for a while and a dispatcher restarted in between."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.lifecycle.notifications import sign
from certfleet.lifecycle.notifications.events import Event, EventKind, emit
from certfleet.x509 import KeyType, generate_private_key
from tests.conftest import FakeClock, make_platform
from tests.lifecycle.notifications.receivers import HttpReceiver, SmtpServer, server_tls
from tests.ports import free_port
from tests.services.snapshot import rows

SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    yield server
    server.close()


def _issue(platform: Platform, name: str, *, team: str | None = "a", days: int | None = None) -> str:
    request = IssuanceRequest(
        "tls-server", generate_private_key(KeyType.EC_P256).public_key(), (name,), None, days
    )
    return platform.issuance.issue(request, actor="test", team=team).record.serial


def _webhook(platform: Platform, url: str, *, team: str | None = "a", **kwargs: object) -> str:
    channel = platform.notifications.add_channel(
        type_name="webhook",
        options={"url": url},
        team=team,
        actor="test",
        secret="s3cret",
        **kwargs,  # type: ignore[arg-type]
    )
    return channel.id


def _states(platform: Platform) -> list[tuple[str, int]]:
    return [
        (s, n)
        for s, n in rows(platform.database, "SELECT state, attempts FROM notification_deliveries ORDER BY id")
    ]


def test_an_event_commits_with_its_change_or_not_at_all(platform: Platform) -> None:
    serial = _issue(platform, "www.a.example.test")
    ((kind, subject, team, payload),) = rows(
        platform.database, "SELECT kind, subject, team, payload_json FROM notification_events"
    )
    assert (kind, subject, team) == ("issued", serial, "a")
    document = json.loads(payload)
    assert document["certificate"]["serial"] == serial and document["owner"] == {"team": "a"}
    with pytest.raises(RuntimeError), platform.store.unit_of_work() as uow:
        emit(uow, Event(EventKind.REVOKED, "x", platform.clock.now(), team="a"))
        raise RuntimeError("the change failed")
    assert rows(platform.database, "SELECT count(*) FROM notification_events") == [(1,)]


def test_each_team_event_reaches_its_webhook_once_signed(platform: Platform, receiver: HttpReceiver) -> None:
    _webhook(platform, receiver.url)
    first = _issue(platform, "www.a.example.test")
    second = _issue(platform, "api.a.example.test")
    _issue(platform, "www.b.example.test", team="b")  # another team's: not for this channel

    report = platform.notifications.dispatch_once()
    again = platform.notifications.dispatch_once()

    assert (report.routed, report.delivered, again.delivered) == (3, 2, 0)
    assert [e["certificate"]["serial"] for e in receiver.events()] == [first, second]
    for request in receiver.requests:
        assert request.headers["x-certfleet-signature"] == sign("s3cret", request.body)
        assert request.json()["event"] == "issued" and request.json()["owner"] == {"team": "a"}
    assert _states(platform) == [("delivered", 1), ("delivered", 1)]


def test_a_receiver_down_for_a_while_gets_the_event_once_across_a_restart(
    platform: Platform, data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    port = free_port()  # nothing listens yet: connections are refused
    _webhook(platform, f"http://127.0.0.1:{port}/hook")
    serial = _issue(platform, "www.a.example.test")

    report = platform.notifications.dispatch_once()
    assert (report.delivered, report.retried) == (0, 1)
    assert "cannot reach 127.0.0.1" in report.errors[0]
    (waiting,) = platform.notifications.deliveries()
    assert waiting.next_attempt_at == clock.now() + 30 * SECOND
    assert platform.notifications.dispatch_once().retried == 0, "not due again before its backoff"
    platform.close()

    # The dispatcher restarts (a new process over the same database), still facing no receiver
    restarted = make_platform(data_dir, db_url, clock)
    try:
        clock.advance(31 * SECOND)
        assert restarted.notifications.dispatch_once().retried == 1
        assert _states(restarted) == [("pending", 2)]
        server = HttpReceiver(port=port)  # the receiver comes up
        try:
            clock.advance(59 * SECOND)
            assert restarted.notifications.dispatch_once().delivered == 0, "backoff doubled to 60 s"
            clock.advance(1 * SECOND)
            assert restarted.notifications.dispatch_once().delivered == 1
            for _ in range(3):
                clock.advance(dt.timedelta(hours=1))
                restarted.notifications.dispatch_once()
            assert [e["certificate"]["serial"] for e in server.events()] == [serial]
            assert _states(restarted) == [("delivered", 3)]
        finally:
            server.close()
    finally:
        restarted.close()


def test_two_dispatchers_at_once_send_each_event_once(
    platform: Platform, receiver: HttpReceiver, data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    _webhook(platform, receiver.url)
    with platform.store.unit_of_work() as uow:
        for index in range(40):
            emit(uow, Event(EventKind.ROTATION_PROGRESS, f"campaign-{index}", clock.now(), team="a"))
    other = make_platform(data_dir, db_url, clock)
    start = threading.Barrier(2)
    reports = []

    def run(p: Platform) -> None:
        start.wait()
        reports.append(p.notifications.dispatch_once())

    threads = [threading.Thread(target=run, args=(p,)) for p in (platform, other)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        platform.notifications.dispatch_once()
    finally:
        other.close()
    ids = Counter(e["id"] for e in receiver.events())
    assert len(ids) == 40 and set(ids.values()) == {1}
    assert sum(r.delivered for r in reports) == 40


def test_a_crashed_dispatchers_lease_is_taken_over_when_it_expires(
    platform: Platform, receiver: HttpReceiver, clock: FakeClock
) -> None:
    _webhook(platform, receiver.url)
    _issue(platform, "www.a.example.test")
    platform.notifications.dispatcher._route(clock.now())
    with platform.store.unit_of_work() as uow:  # a dispatcher leases the row, then dies
        assert len(uow.outbox.claim("dead", clock.now(), clock.now() + dt.timedelta(minutes=5), 10)) == 1
    assert platform.notifications.dispatch_once().delivered == 0
    clock.advance(dt.timedelta(minutes=5))
    assert platform.notifications.dispatch_once().delivered == 1
    assert len(receiver.requests) == 1


def test_failures_back_off_honour_retry_after_and_stop_at_a_refusal(
    platform: Platform, receiver: HttpReceiver, clock: FakeClock
) -> None:
    _webhook(platform, receiver.url)
    _issue(platform, "www.a.example.test")
    receiver.status = 503
    platform.notifications.dispatch_once()
    receiver.status, receiver.headers = 429, {"Retry-After": "600"}
    clock.advance(30 * SECOND)
    platform.notifications.dispatch_once()
    (delivery,) = platform.notifications.deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_error) == (
        "pending",
        2,
        "HTTP 429 Too Many Requests",
    )
    assert delivery.next_attempt_at == clock.now() + dt.timedelta(seconds=600)
    receiver.status, receiver.headers = 410, {}
    clock.advance(dt.timedelta(minutes=10))
    assert platform.notifications.dispatch_once().failed == 1
    clock.advance(dt.timedelta(hours=2))
    assert platform.notifications.dispatch_once().delivered == 0
    assert len(receiver.requests) == 3
    assert _states(platform) == [("failed", 3)]


def test_a_receiver_down_for_over_a_week_is_given_up_with_the_reason(
    platform: Platform, clock: FakeClock
) -> None:
    _webhook(platform, f"http://127.0.0.1:{free_port()}/hook")
    _issue(platform, "www.a.example.test")
    for _ in range(200):
        if platform.notifications.dispatch_once().failed:
            break
        clock.advance(dt.timedelta(hours=1))
    ((state, error),) = rows(platform.database, "SELECT state, last_error FROM notification_deliveries")
    assert state == "failed" and error.startswith("gave up after")


def test_an_unknown_channel_type_keeps_its_deliveries_waiting(platform: Platform, clock: FakeClock) -> None:
    channel = _webhook(platform, "http://127.0.0.1:9/hook")
    with platform.database.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE notification_channels SET type = 'pager' WHERE id = '{channel}'")
    _issue(platform, "www.a.example.test")
    platform.notifications.dispatch_once()
    ((state, error),) = rows(platform.database, "SELECT state, last_error FROM notification_deliveries")
    assert state == "pending" and "unknown channel type 'pager'" in error


def test_expiring_notices_come_once_per_threshold(platform: Platform, clock: FakeClock) -> None:
    serial = _issue(platform, "www.a.example.test", days=40)
    late = _issue(platform, "api.a.example.test", days=5)  # first seen 5 days out: only the 7-day notice
    start = clock.now()

    def notices() -> list[tuple[str, int]]:
        found = rows(
            platform.database, "SELECT subject, payload_json FROM notification_events WHERE kind = 'expiring'"
        )
        return sorted((s, json.loads(p)["details"]["threshold_days"]) for s, p in found)

    assert platform.notifications.expiring_scan() == 1
    assert notices() == [(late, 7)]
    clock.set(start + dt.timedelta(days=4, hours=12))  # half a day left for the second
    assert platform.notifications.expiring_scan() == 1
    clock.set(start + dt.timedelta(days=11))  # 29 days left for the first; the second expired
    assert platform.notifications.expiring_scan() == 1
    assert platform.notifications.expiring_scan() == 0
    clock.set(start + dt.timedelta(days=34))  # 6 days left: the 7-day notice, not the 14-day
    platform.notifications.expiring_scan()
    clock.set(start + dt.timedelta(days=39, hours=12))
    platform.notifications.expiring_scan()
    clock.set(start + dt.timedelta(days=41))  # expired: nothing more
    assert platform.notifications.expiring_scan() == 0
    assert notices() == sorted([(serial, 30), (serial, 7), (serial, 1), (late, 7), (late, 1)])


def test_a_digest_channel_gets_one_message_a_day_for_its_expiring_notices(
    platform: Platform, receiver: HttpReceiver, clock: FakeClock
) -> None:
    clock.set(dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC))
    platform.authorities.refresh()
    _webhook(platform, receiver.url, events=("expiring",), digest=True)
    first = _issue(platform, "www.a.example.test", days=3)
    second = _issue(platform, "api.a.example.test", days=6)
    platform.notifications.expiring_scan()
    platform.notifications.dispatch_once()
    assert receiver.requests == [], "held until the day is over"
    clock.set(dt.datetime(2026, 11, 29, 0, 5, tzinfo=dt.UTC))
    report = platform.notifications.dispatch_once()
    assert (report.digests, report.delivered) == (1, 1)
    (digest,) = receiver.events()
    assert digest["event"] == "digest" and digest["details"]["day"] == "2026-11-28"
    assert sorted(i["certificate"]["serial"] for i in digest["details"]["items"]) == sorted([first, second])
    assert platform.notifications.dispatch_once().delivered == 0


def test_email_arrives_once_over_starttls(platform: Platform, tmp_path: Path) -> None:
    tls, root = server_tls(platform, tmp_path)
    server = SmtpServer(tls)
    try:
        platform.notifications.add_channel(
            type_name="email",
            options={
                "url": f"smtp://127.0.0.1:{server.port}",
                "to": ["team-a@example.test"],
                "from": "certfleet@example.test",
                "ca_file": str(root),
            },
            team="a",
            actor="test",
        )
        serial = _issue(platform, "www.a.example.test")
        platform.notifications.dispatch_once()
        platform.notifications.dispatch_once()
        (mail,) = server.mails
        assert mail.tls and mail.rcpt_tos == ["team-a@example.test"]
        assert f"serial {serial}" in mail.message["Subject"]
    finally:
        server.close()


def test_a_channel_can_narrow_to_some_event_kinds(platform: Platform, receiver: HttpReceiver) -> None:
    _webhook(platform, receiver.url, team=None, events=("revoked",))
    _issue(platform, "www.a.example.test")
    with platform.store.unit_of_work() as uow:
        emit(uow, Event(EventKind.REVOKED, "abc", platform.clock.now(), team="b"))
    platform.notifications.dispatch_once()
    assert [e["event"] for e in receiver.events()] == ["revoked"]


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)  # polling a condition with a deadline, not waiting for a guess
    return condition()


def test_the_scheduler_jobs_deliver_and_stop_when_asked(
    platform: Platform, receiver: HttpReceiver, clock: FakeClock
) -> None:
    _webhook(platform, receiver.url)
    _issue(platform, "www.a.example.test", days=3)  # an issued event and, from the scan, an expiring one
    # Given the platform's scheduler, one tick runs the expiry scan, then the dispatch pass
    ran = platform.scheduler.tick()
    assert {"notifications.expiry", "notifications.dispatch"} <= set(ran)
    assert sorted(e["event"] for e in receiver.events()) == ["expiring", "issued"]

    # The next dispatch waits for its interval; the loop in a thread ends when asked
    _issue(platform, "api.a.example.test")
    assert "notifications.dispatch" not in platform.scheduler.tick()
    clock.advance(dt.timedelta(seconds=5))
    stop = threading.Event()
    thread = threading.Thread(target=platform.scheduler.run, args=(stop,))
    thread.start()
    try:
        assert _wait_for(lambda: len(receiver.requests) == 3)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert [e["event"] for e in receiver.events()][-1] == "issued"

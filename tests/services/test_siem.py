"""The SIEM sender as ``certfleet serve`` runs it: configured in ``[audit.siem]``, run by the
scheduler's ``audit.siem`` job, JSON lines to a TLS collector, a cursor no stale sender
sets back, and the backlog gauge on ``/metrics``."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from certfleet.app import Platform
from certfleet.audit import AuditLog
from certfleet.audit._relp import FrameDecoder, RelpFrame, encode_frame
from certfleet.config._siem import SiemSettings
from certfleet.services.siem import SiemSender, SiemUnavailable
from certfleet.x509 import KeyType
from tests.conftest import FakeClock, make_platform
from tests.discovery.pki import Pki, key_pem, pem


class JsonCollector:
    """A TLS server on loopback that keeps every line it reads (a collector of JSON lines)."""

    def __init__(self, workdir: Path, *, client_ca: Path | None = None) -> None:
        pki = Pki("JSON collector")
        server = pki.leaf(["localhost", "127.0.0.1"], issuer=pki.root)
        self.ca_file = workdir / "collector-ca.pem"
        self.ca_file.write_bytes(pem(pki.root.cert))
        (workdir / "collector.pem").write_bytes(pem(server.cert))
        (workdir / "collector.key").write_bytes(key_pem(server.key))
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(workdir / "collector.pem", workdir / "collector.key")
        if client_ca is not None:  # mutual TLS: only senders with a certificate from client_ca
            self._context.verify_mode = ssl.CERT_REQUIRED
            self._context.load_verify_locations(client_ca)
        self.peers: list[object] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.lines: list[bytes] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            try:
                conn = self._context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            self.peers.append(conn.getpeercert())
            with conn, conn.makefile("rb") as lines:
                for line in lines:
                    with self._changed:
                        self.lines.append(line)
                        self._changed.notify_all()

    def wait_for(self, count: int) -> list[dict[str, object]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.lines) >= count, timeout=10), self.lines
            return [json.loads(line) for line in self.lines]

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[JsonCollector]:
    server = JsonCollector(tmp_path)
    yield server
    server.close()


def _entries(platform: Platform) -> list[dict[str, object]]:
    with platform.store.unit_of_work(read_only=True) as uow:
        return [e.to_dict() for e in uow.audit.entries()]


def test_serve_streams_json_lines_from_its_scheduler_and_reports_the_backlog(
    data_dir: Path, db_url: str, clock: FakeClock, collector: JsonCollector
) -> None:
    (data_dir / "config.toml").write_text(
        f"""[audit.siem]
host = "localhost"
port = {collector.port}
ca_file = "{collector.ca_file}"
format = "json"
hostname = "node-a"
"""
    )
    platform = make_platform(data_dir, db_url, clock)
    try:
        platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
        with platform.store.unit_of_work() as uow:
            AuditLog(uow.audit, clock).record("alice", "policy.applied", "v1", {"rules": ["ü"]})
        expected = _entries(platform)
        gauge = f"certfleet_siem_undelivered_entries {float(len(expected))}"
        assert gauge in platform.metrics.exposition(None).decode()

        assert "audit.siem" in platform.scheduler.tick()  # after the jobs before it, which audit too

        expected = _entries(platform)
        received = collector.wait_for(len(expected))
        assert received == [{**entry, "host": "node-a"} for entry in expected]
        assert "certfleet_siem_undelivered_entries 0.0" in platform.metrics.exposition(None).decode()
    finally:
        platform.close()


def test_a_stale_sender_never_sets_the_cursor_back(
    platform: Platform, collector: JsonCollector, tmp_path: Path
) -> None:
    settings = SiemSettings(
        host="localhost", port=collector.port, ca_file=str(collector.ca_file), format="json"
    )
    cursor = platform.store.siem_cursor()
    first = SiemSender(platform.store.unit_of_work, cursor, settings, platform.clock)
    head = len(_entries(platform))
    try:
        assert first.deliver_once().delivered_seq == head
        assert not cursor.advance(0, 1, platform.clock.now())  # a sender still at 0 loses
        assert cursor.position() == head and first.backlog() == 0
    finally:
        first.close()


def test_a_client_certificate_is_presented_when_configured(platform: Platform, tmp_path: Path) -> None:
    clients = Pki("SIEM clients")
    client = clients.leaf(["certfleet-node-a"], issuer=clients.root)
    (tmp_path / "clients-ca.pem").write_bytes(pem(clients.root.cert))
    (tmp_path / "client.pem").write_bytes(pem(client.cert))
    (tmp_path / "client.key").write_bytes(key_pem(client.key))
    server = JsonCollector(tmp_path, client_ca=tmp_path / "clients-ca.pem")
    settings = SiemSettings(
        host="localhost",
        port=server.port,
        ca_file=str(server.ca_file),
        client_cert=str(tmp_path / "client.pem"),
        client_key=str(tmp_path / "client.key"),
        format="json",
    )
    sender = SiemSender(platform.store.unit_of_work, platform.store.siem_cursor(), settings, platform.clock)
    try:
        sender.deliver_once()
        assert len(server.wait_for(len(_entries(platform)))) == len(_entries(platform))
        (peer,) = server.peers
        assert peer["subject"] == ((("commonName", "certfleet-node-a"),),)  # type: ignore[index]
    finally:
        sender.close()
        server.close()


class FakeRelpCollector:
    """A RELP collector in memory (hand-written, behind the sender's ``connect`` seam): it
    answers open, acknowledges each syslog command in order, and refuses (``500``) the
    entries whose seq is in ``refuse``, as rsyslog does when its queue cannot take them."""

    def __init__(self) -> None:
        self.refuse: set[int] = set()
        self.received: list[int] = []  # seqs acknowledged, in the order they came
        self.connections: list[_FakeRelpConnection] = []

    def connect(self) -> _FakeRelpConnection:
        self.connections.append(_FakeRelpConnection(self))
        return self.connections[-1]


class _FakeRelpConnection:
    def __init__(self, collector: FakeRelpCollector) -> None:
        self._collector = collector
        self._decoder = FrameDecoder()
        self._answers = bytearray()
        self.closed = False

    def alive(self) -> bool:
        return not self.closed

    def send(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            if frame.command == "open":
                answer = b"200 OK\nrelp_version=0\nrelp_software=fake\ncommands=syslog"
            elif frame.command == "syslog":
                seq = int(json.loads(frame.data)["seq"])
                if seq in self._collector.refuse:
                    answer = b"500 queue full"
                else:
                    self._collector.received.append(seq)
                    answer = b"200 OK"
            else:
                answer = b""
            self._answers += encode_frame(RelpFrame(frame.txnr, "rsp", answer))

    def server_close(self) -> None:
        self._answers += b"0 serverclose 0\n"

    def receive(self, timeout_seconds: float) -> bytes | None:
        answers, self._answers = bytes(self._answers), bytearray()
        return answers or None

    def close(self) -> None:
        self.closed = True


def _relp_sender(platform: Platform, tmp_path: Path, collector: FakeRelpCollector) -> SiemSender:
    (tmp_path / "ca.pem").write_text("unused: the fake connection has no TLS")
    settings = SiemSettings(
        host="localhost", transport="relp", port=2514, ca_file=str(tmp_path / "ca.pem"), format="json"
    )
    cursor = platform.store.siem_cursor()
    return SiemSender(
        platform.store.unit_of_work, cursor, settings, platform.clock, connect=collector.connect
    )


def test_relp_the_cursor_stops_before_a_refused_entry_though_later_ones_were_acknowledged(
    platform: Platform, tmp_path: Path
) -> None:
    with platform.store.unit_of_work() as uow:
        log = AuditLog(uow.audit, platform.clock)
        for i in range(6):
            log.record("alice", "policy.applied", f"v{i}", {})
    seqs = [int(str(e["seq"])) for e in _entries(platform)]
    refused = seqs[-4]
    collector = FakeRelpCollector()
    collector.refuse = {refused}
    sender = _relp_sender(platform, tmp_path, collector)

    with pytest.raises(SiemUnavailable, match=r"refused txnr \d+: 500 queue full"):
        sender.deliver_once()
    assert collector.received == [s for s in seqs if s != refused]  # the later ones acknowledged
    assert platform.store.siem_cursor().position() == refused - 1  # but never passed the gap
    assert sender.backlog() == 4

    collector.refuse = set()
    resumed = sender.deliver_once()
    assert resumed.reconnected and resumed.sent == 4 and resumed.delivered_seq == seqs[-1]
    assert collector.received[-4:] == seqs[-4:]  # again from the first unacknowledged
    # The window behind the refused entry was already in flight: those arrive twice, and the
    # refused one after them (every message carries its seq for the collector to order by).
    assert collector.received == [s for s in seqs if s != refused] + seqs[-4:]
    assert len(collector.connections) == 2 and collector.connections[0].closed


def test_relp_a_serverclose_between_rounds_means_a_new_session(platform: Platform, tmp_path: Path) -> None:
    collector = FakeRelpCollector()
    sender = _relp_sender(platform, tmp_path, collector)
    assert sender.deliver_once().sent == len(_entries(platform))
    collector.connections[-1].server_close()  # rsyslog shutting down between two rounds
    with platform.store.unit_of_work() as uow:
        AuditLog(uow.audit, platform.clock).record("alice", "policy.applied", "later", {})

    later = sender.deliver_once()
    assert later.reconnected and later.sent == 1 and sender.backlog() == 0
    assert collector.received == [int(str(e["seq"])) for e in _entries(platform)]

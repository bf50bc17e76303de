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
from certfleet.config._siem import SiemSettings
from certfleet.services.siem import SiemSender
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

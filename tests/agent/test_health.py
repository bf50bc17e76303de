"""The health check against a real TLS listener: it passes only when the endpoint presents
the expected certificate, and waits for a reload that takes effect late."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from certfleet.agent.config import HealthCheck
from certfleet.agent.errors import HealthCheckFailed
from certfleet.agent.health import presented_fingerprint, wait_for_certificate
from certfleet.agent.targets import Material
from tests.agent.material import ThrowawayCa
from tests.ports import free_port


class TlsServer:
    """Serves one certificate; ``serve(material)`` swaps it, as a reload does."""

    def __init__(self, tmp_path: Path) -> None:
        self._dir = tmp_path
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._context: ssl.SSLContext | None = None
        # Served one per connection before the current one, as nginx's old and new workers
        # both accept while a reload is under way.
        self.flapping: list[ssl.SSLContext] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._sock.settimeout(0.1)
        self._thread.start()

    def serve(self, material: Material) -> None:
        self._context = self.context(material)

    def context(self, material: Material) -> ssl.SSLContext:
        (self._dir / "k.pem").write_bytes(material.key_pem())
        (self._dir / "c.pem").write_bytes(material.fullchain_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._dir / "c.pem", self._dir / "k.pem")
        return context

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            try:
                context = self.flapping.pop(0) if self.flapping else self._context
                if context is not None:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TlsServer]:
    s = TlsServer(tmp_path)
    yield s
    s.close()


def test_the_presented_certificate_is_identified(server: TlsServer) -> None:
    material = ThrowawayCa().issue()
    server.serve(material)
    check = HealthCheck("127.0.0.1", server.port, "www.example.test", timeout_seconds=5)
    assert presented_fingerprint(check) == material.fingerprint
    wait_for_certificate(check, material.fingerprint)


def test_a_late_reload_is_waited_for(server: TlsServer) -> None:
    ca = ThrowawayCa()
    old, new = ca.issue(), ca.issue()
    server.serve(old)
    check = HealthCheck("127.0.0.1", server.port, None, timeout_seconds=10)
    timer = threading.Timer(0.5, server.serve, args=(new,))
    timer.start()
    wait_for_certificate(check, new.fingerprint)
    timer.join()


def test_a_reload_under_way_is_waited_out_until_the_new_certificate_is_steady(server: TlsServer) -> None:
    """Old and new certificates on alternate connections (nginx's old workers still
    accepting): one handshake with the new one is not the end of the reload."""
    ca = ThrowawayCa()
    old, new = ca.issue(), ca.issue()
    server.serve(new)
    server.flapping = [server.context(m) for m in (old, new, old, new, new, old)]
    check = HealthCheck("127.0.0.1", server.port, None, timeout_seconds=10)
    wait_for_certificate(check, new.fingerprint)
    assert server.flapping == []  # every connection of the reload was seen through
    assert presented_fingerprint(check) == new.fingerprint


def test_an_endpoint_that_never_settles_fails(server: TlsServer) -> None:
    ca = ThrowawayCa()
    old, new = ca.issue(), ca.issue()
    server.serve(old)
    server.flapping = [server.context(m) for m in (new, old) * 100]
    check = HealthCheck("127.0.0.1", server.port, None, timeout_seconds=1)
    with pytest.raises(HealthCheckFailed, match=f"last saw certificate {old.fingerprint[:16]}"):
        wait_for_certificate(check, new.fingerprint)


def test_the_wrong_certificate_fails_with_what_was_seen(server: TlsServer) -> None:
    ca = ThrowawayCa()
    old, new = ca.issue(), ca.issue()
    server.serve(old)
    check = HealthCheck("127.0.0.1", server.port, "www.example.test", timeout_seconds=1)
    with pytest.raises(HealthCheckFailed, match=f"last saw certificate {old.fingerprint[:16]}"):
        wait_for_certificate(check, new.fingerprint)


def test_a_closed_port_fails() -> None:
    check = HealthCheck("127.0.0.1", free_port(), None, timeout_seconds=1)
    with pytest.raises(HealthCheckFailed, match="an error"):
        wait_for_certificate(check, "0" * 64)

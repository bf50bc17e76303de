"""Small real servers for discovery tests, each on a loopback port: a TLS server with a
chosen chain, and hostile ones that accept TCP and then misbehave."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path


class ThreadedServer:
    """Accepts on 127.0.0.1 and runs ``handle`` for each connection in its own thread."""

    def __init__(
        self, handle: Callable[[socket.socket, threading.Event], None], host: str = "127.0.0.1"
    ) -> None:
        self._handle = handle
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self.host = host
        self.port = int(self._listener.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self._handle(conn, self._stop)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        self._thread.join(timeout=5)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accepts TCP and never says a word."""
    stop.wait()


def trickle(conn: socket.socket, stop: threading.Event) -> None:
    """A TLS record header, then one byte every 100 ms: alive, never done."""
    for byte in b"\x16\x03\x03\x40\x00" + b"\x02" * 10_000:
        if stop.wait(0.1):
            return
        conn.sendall(bytes([byte]))


def plain_http(conn: socket.socket, stop: threading.Event) -> None:
    conn.settimeout(5)
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def garbage(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(os.urandom(512))


def tls(certfile: Path, keyfile: Path, *, host: str = "127.0.0.1") -> ThreadedServer:
    """A real TLS server presenting ``certfile`` (leaf then chain) and answering HTTP 200."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(5)
        try:
            with context.wrap_socket(conn, server_side=True) as tls_conn:
                tls_conn.recv(4096)
                tls_conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except (ssl.SSLError, OSError):
            pass

    return ThreadedServer(handle, host)


class SwappableTls(ThreadedServer):
    """A TLS server whose certificate can be replaced between scans."""

    def __init__(self, certfile: Path, keyfile: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile, keyfile)
        super().__init__(self._handle_tls)

    def use(self, certfile: Path, keyfile: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        self.context = context

    def _handle_tls(self, conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(5)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls_conn:
                tls_conn.recv(4096)
        except (ssl.SSLError, OSError):
            pass

"""A real ``certfleet serve`` process under a 100 MiB chunked body: it answers 413 after at
most the route's limit, and its memory does not grow with the body.

The client speaks HTTP/1.1 over TLS on a raw socket, so nothing in between buffers or
retries: it sends the body chunk by chunk and stops as soon as the server has answered (or
closed the connection), then reads what the server sent.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.test_serve import Server, certfleet

pytestmark = pytest.mark.integration

BODY_BYTES = 100 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
MAX_RSS_GROWTH_BYTES = 50 * 1024 * 1024


@dataclass
class Streamed:
    sent_bytes: int
    response: bytes
    ended: str  # how the connection ended, for the failure message


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def stream_chunked(port: int, root: Path, path: str, total: int) -> Streamed:
    """POST ``total`` bytes as a chunked body; stop sending once the server has answered."""
    context = ssl.create_default_context(cafile=str(root))
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        tls.sendall(head.encode())
        frame = f"{CHUNK_BYTES:x}\r\n".encode() + b" " * CHUNK_BYTES + b"\r\n"
        sent, ended = 0, ""
        response = bytearray()
        while sent < total:
            early = _read_ready(tls)
            if early is not None:  # the server has answered (or closed): stop sending
                response += early
                ended = "" if early else "closed while sending"
                break
            try:
                tls.sendall(frame)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as exc:
                ended = f"send failed: {exc!r}"  # what the server sent may still be buffered
                break
            sent += CHUNK_BYTES
        else:
            tls.sendall(b"0\r\n\r\n")
        while True:
            try:
                data = tls.recv(65536)
            except (ConnectionResetError, ssl.SSLError) as exc:
                ended += f"; recv failed: {exc!r}"
                break
            if not data:
                ended += "; eof"
                break
            response += data
        return Streamed(sent, bytes(response), ended)


def _read_ready(tls: ssl.SSLSocket) -> bytes | None:
    """Application data the server has already sent (b"" when it closed), or None. Readable
    is not enough: TLS 1.3 session tickets make the socket readable with no data."""
    readable, _, _ = select.select([tls], [], [], 0)
    if not readable and not tls.pending():
        return None
    tls.setblocking(False)
    try:
        return tls.recv(65536)
    except ssl.SSLWantReadError:
        return None
    except (ConnectionResetError, ssl.SSLError):
        return b""
    finally:
        tls.settimeout(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    base = tmp_path_factory.mktemp("limits")
    data_dir = base / "data"
    certfleet("init", "--data-dir", str(data_dir))
    # One process that serves: the RSS measured below is the serving process's own (with
    # several workers the pid would be the supervisor's, which never reads a body).
    served = Server(data_dir, extra=["--workers", "1"])
    served.start()
    try:
        yield served, served.root_pem(base / "root.pem")
    finally:
        served.stop()


@pytest.mark.parametrize("path", ["/api/v1/agent/enroll", "/api/v1/certificates"])
def test_a_100_mib_chunked_body_gets_413_without_the_server_growing(
    server: tuple[Server, Path], path: str
) -> None:
    served, root = server
    assert served.process is not None
    pid = served.process.pid
    # Warm up the route (imports, TLS and JSON machinery) so the measurement is the body's.
    with httpx.Client(verify=ssl.create_default_context(cafile=str(root))) as client:
        assert client.post(f"{served.https}{path}", content=b"{}").status_code in (401, 422)
    before = rss_bytes(pid)

    streamed = stream_chunked(served.https_port, root, path, BODY_BYTES)

    grown = rss_bytes(pid) - before
    assert grown < MAX_RSS_GROWTH_BYTES, f"server RSS grew by {grown} bytes"
    assert streamed.sent_bytes < BODY_BYTES // 10, f"the server read {streamed.sent_bytes} bytes"
    # The 413 was sent before the close, and it is what the client read.
    head, _, body = streamed.response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), (streamed.ended, streamed.response[:200])
    assert b"content-type: application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["status"] == 413
    assert problem["detail"] == f"request body exceeds the limit of 65536 bytes for POST {path}"
    # And the server is still there for everyone else.
    assert httpx.get(f"{served.http}/healthz").text == "ok\n"

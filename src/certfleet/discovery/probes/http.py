"""The two HTTP questions of ``--http-checks``: does HTTPS send HSTS, and does plain HTTP
redirect to HTTPS? An endpoint failing either is open to SSL stripping (RFC 6797 section 2.3).

A minimal HTTP/1.1 client on purpose: one request, the status line and headers only, at most
:data:`MAX_HEAD_BYTES`, under a deadline. A full client would follow redirects, decode bodies
and pool connections, none of which a scanner wants from a hostile server.
"""

from __future__ import annotations

import asyncio
import re

from certfleet.discovery.outcomes import HstsCheck, RedirectCheck

__all__ = ["MAX_HEAD_BYTES", "check_redirect", "fetch_hsts", "parse_hsts_max_age", "read_head"]

MAX_HEAD_BYTES = 16 * 1024
_MAX_AGE = re.compile(r'(?:^|;)\s*max-age\s*=\s*"?(\d{1,12})"?\s*(?:;|$)', re.IGNORECASE)


def _host_header(name: str, port: int, default_port: int) -> str:
    host = f"[{name}]" if ":" in name else name
    return host if port == default_port else f"{host}:{port}"


def _request(name: str, port: int, default_port: int, method: str) -> bytes:
    return (
        f"{method} / HTTP/1.1\r\nHost: {_host_header(name, port, default_port)}\r\n"
        "User-Agent: certfleet-discovery\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]] | None:
    """Read a status line and headers; ``None`` when the peer does not speak HTTP/1.x.
    Repeated headers keep the first value (RFC 6797 section 8.1: only the first HSTS counts)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEAD_BYTES:
        chunk = await reader.read(MAX_HEAD_BYTES - len(data))
        if not chunk:
            break
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0]
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})(?: |$)", lines[0]) if lines else None
    if match is None:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return int(match.group(1)), headers


def parse_hsts_max_age(value: str) -> int | None:
    """The ``max-age`` of an HSTS header value, ``None`` when it has none (then the header
    is invalid and ignored, RFC 6797 section 6.1.1)."""
    match = _MAX_AGE.search(value)
    return int(match.group(1)) if match else None


async def fetch_hsts(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str, port: int
) -> HstsCheck:
    """Send ``HEAD /`` over an established TLS connection and read the HSTS header."""
    writer.write(_request(name, port, 443, "HEAD"))
    await writer.drain()
    head = await read_head(reader)
    if head is None:
        return HstsCheck(answered=False)
    header = head[1].get("strict-transport-security")
    return HstsCheck(answered=True, header=header, max_age=parse_hsts_max_age(header) if header else None)


async def check_redirect(address: str, port: int, name: str, timeout_seconds: float) -> RedirectCheck:
    """Ask plain HTTP on ``address:port`` for ``/`` with ``Host: name``. Never raises: a port
    that refuses is "not reachable" (nothing to strip); other failures carry a reason."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_seconds):
            reader, writer = await asyncio.open_connection(address, port)
            writer.write(_request(name, port, 80, "GET"))
            await writer.drain()
            head = await read_head(reader)
    except ConnectionRefusedError:
        return RedirectCheck(port, reachable=False, reason="connection refused")
    except TimeoutError:
        return RedirectCheck(port, reachable=False, reason=f"timed out after {timeout_seconds:g} s")
    except OSError as exc:
        return RedirectCheck(port, reachable=False, reason=exc.strerror or type(exc).__name__)
    finally:
        if writer is not None:
            writer.transport.abort()
    if head is None:
        return RedirectCheck(port, reachable=True, reason="the service does not answer HTTP")
    status, headers = head
    return RedirectCheck(port, reachable=True, status=status, location=headers.get("location"))

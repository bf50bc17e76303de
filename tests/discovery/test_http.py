from __future__ import annotations

import asyncio

import pytest

from certfleet.discovery.probes.http import parse_hsts_max_age, read_head


@pytest.mark.parametrize(
    ("header", "max_age"),
    [
        ("max-age=31536000", 31536000),
        ("max-age=31536000; includeSubDomains; preload", 31536000),
        ('includeSubDomains; MAX-AGE="600"', 600),
        ("max-age=0", 0),
        ("includeSubDomains", None),
        ("max-age=abc", None),
    ],
)
def test_hsts_max_age(header: str, max_age: int | None) -> None:
    assert parse_hsts_max_age(header) == max_age


def _head(data: bytes) -> tuple[int, dict[str, str]] | None:
    async def run() -> tuple[int, dict[str, str]] | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_head(reader)

    return asyncio.run(run())


def test_read_head_keeps_the_first_header_and_refuses_non_http() -> None:
    got = _head(
        b"HTTP/1.1 301 Moved\r\nLocation: https://a/\r\nStrict-Transport-Security: max-age=5\r\n"
        b"strict-transport-security: max-age=0\r\n\r\nbody"
    )
    assert got == (301, {"location": "https://a/", "strict-transport-security": "max-age=5"})
    assert _head(b"\x15\x03\x01\x00\x02\x02\x46") is None
    assert _head(b"SSH-2.0-OpenSSH_9.2\r\n") is None
    # A head larger than the cap is cut, not read forever.
    huge = _head(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100_000)
    assert huge is not None and huge[0] == 200

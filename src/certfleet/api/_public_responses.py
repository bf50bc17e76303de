"""What the plain-HTTP listener (:mod:`certfleet.api.public`) sends: bare ASGI responses,
RFC 7807 problem documents for bad HTTP input, and OCSP responses and CRLs with the RFC 5019
section 6.2 caching headers. The routes decide what to answer; this module how it is framed."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from email.utils import format_datetime

from certfleet.api._body_limit import Scope, Send
from certfleet.revocation import Published

__all__ = ["NO_STORE", "Documents", "Headers", "header", "problem", "respond"]

Headers = list[tuple[bytes, bytes]]
NO_STORE: Headers = [(b"cache-control", b"no-store")]
_HEADER_MEMO_ENTRIES = 10_000


def _http_date(value: dt.datetime) -> bytes:
    return format_datetime(value.astimezone(dt.UTC), usegmt=True).encode()


async def respond(send: Send, status: int, body: bytes, headers: Headers, *, head: bool = False) -> None:
    if status != 304:  # RFC 9110 section 8.6: a 304 says nothing of a body it does not carry
        headers = [(b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def problem(send: Send, status: int, title: str, detail: str, headers: Headers | None = None) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    await respond(send, status, body, [(b"content-type", b"application/problem+json"), *(headers or [])])


def header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


class Documents:
    """Serves a :class:`Published` with the RFC 5019 section 6.2 caching headers: max-age
    ends when a newer document exists (never after nextUpdate), Expires is nextUpdate,
    Last-Modified thisUpdate. Everything but max-age is worked out once per document."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._clock = clock
        self._memo: dict[bytes, tuple[dt.datetime, bytes, Headers]] = {}

    async def send(self, send: Send, scope: Scope, document: Published, media_type: bytes) -> None:
        head = scope["method"] == "HEAD"
        if document.this_update is None or document.next_update is None or document.refresh_at is None:
            await respond(send, 200, document.der, [(b"content-type", media_type), *NO_STORE], head=head)
            return
        if not document.shared_cache:  # echoes this client's nonce: useless to anyone else
            headers = [(b"content-type", media_type), (b"cache-control", b"private, no-store")]
            await respond(send, 200, document.der, headers, head=head)
            return
        memo = self._memo.get(document.der)
        if memo is None:
            memo = (
                min(document.refresh_at, document.next_update),
                document.etag.encode(),
                [
                    (b"expires", _http_date(document.next_update)),
                    (b"last-modified", _http_date(document.this_update)),
                    (b"etag", document.etag.encode()),
                ],
            )
            if len(self._memo) >= _HEADER_MEMO_ENTRIES:
                self._memo.clear()
            self._memo[document.der] = memo
        fresh_until, etag, fixed = memo
        max_age = max(0, int((fresh_until - self._clock()).total_seconds()))
        cache = f"max-age={max_age}, public, no-transform, must-revalidate".encode()
        headers = [(b"cache-control", cache), *fixed]
        match = header(scope, b"if-none-match")
        if match and etag in [t.strip() for t in match.split(b",")]:
            await respond(send, 304, b"", headers)
            return
        await respond(send, 200, document.der, [(b"content-type", media_type), *headers], head=head)

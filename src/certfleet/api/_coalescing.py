"""The plain-HTTP listener's protocol: uvicorn's httptools protocol whose writes made in one
event-loop step leave in one ``send``.

uvicorn writes a response's head when the application sends ``http.response.start`` and its
body on ``http.response.body``: two writes, so two syscalls and two TCP segments for every
OCSP answer, the listener's hottest path (a profile put them at 28 % of a worker's time).
The application sends both in the same step, so holding writes until the loop's next
callback joins them. Written by hand: uvicorn has no option for it, and a corked socket
(TCP_CORK) would need a hook at the end of each response that it does not offer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingProtocol"]


class _CoalescingTransport:
    """A transport whose ``write`` calls are joined until the event loop's next callback;
    everything else is the real transport's (flow control included: what it holds back is
    at most one step's writes)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

"""The plain-HTTP listener's transport joins the writes of one event-loop step (a response's
head and body) into one, and never loses or reorders bytes, on close included."""

from __future__ import annotations

import asyncio

from certfleet.api._coalescing import _CoalescingTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 8080) if name == "sockname" else default


def test_writes_of_one_step_leave_in_one_write_in_order() -> None:
    async def scenario() -> RecordingTransport:
        real = RecordingTransport()
        transport = _CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
        transport.write(memoryview(b"body"))
        assert real.writes == []  # held until the loop's next callback
        await asyncio.sleep(0)  # one loop step, not a wait for time
        transport.write(b"second response")
        await asyncio.sleep(0)
        assert transport.get_extra_info("sockname") == ("127.0.0.1", 8080)  # the rest is the real one's
        return real

    real = asyncio.run(scenario())
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody", b"second response"]


def test_close_sends_what_is_pending_first() -> None:
    async def scenario() -> RecordingTransport:
        real = RecordingTransport()
        transport = _CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"last answer")
        transport.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left and writes nothing
        return real

    real = asyncio.run(scenario())
    assert real.writes == [b"last answer"] and real.closed

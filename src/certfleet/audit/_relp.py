"""The client side of RELP, the Reliable Event Logging Protocol (rsyslog's imrelp): frames,
their parsing, and the acknowledgement bookkeeping of one session. Bytes in, bytes out; the
socket lives with the sender (:mod:`certfleet.services.siem`).

Written here because no well-kept Python RELP client exists on PyPI (the few packages are
unmaintained and do not pipeline or check answers); the protocol is small. Its frame::

    TXNR SP COMMAND SP DATALEN [SP DATA] LF

* TXNR: 1 to 9 digits; the client numbers its commands 1, 2, ... and wraps after
  999999999 to 1 (0 is the server's own, for ``serverclose``).
* COMMAND: 1 to 32 letters (``open``, ``syslog``, ``close``; the server answers ``rsp``).
* DATALEN: 1 to 9 digits, the byte length of DATA; no SP and no DATA when it is 0.
* An ``rsp`` DATA is ``CODE [SP HUMANMSG] [LF CMDDATA]``: 200 acknowledges, anything else
  refuses. The ``open`` answer's CMDDATA lists offers (``relp_version=0``,
  ``commands=syslog``) one a line.

A ``syslog`` command is acknowledged only once the collector took the message into its
queue: this is what makes "the collector has it" provable, unlike plain TCP where bytes the
kernel accepted may still die in a collector's socket buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

from certfleet.errors import CertfleetError

__all__ = [
    "MAX_TXNR",
    "FrameDecoder",
    "RelpClient",
    "RelpError",
    "RelpFrame",
    "RelpProtocolError",
    "RelpRefused",
    "RelpResponse",
    "RelpServerClosed",
    "encode_frame",
    "parse_response",
]

MAX_TXNR = 999_999_999
_MAX_DIGITS = 9
_MAX_COMMAND = 32
# What a server may answer is small (an rsp, its offers); a larger frame is a broken peer.
MAX_ANSWER_BYTES = 64 * 1024


class RelpError(CertfleetError, title="RELP session failed"):
    """Base of RELP failures. ``acknowledged`` holds the tags of the messages the server did
    acknowledge in the same read, before the failure, so the caller counts them delivered.

    ::

        RelpError
        ├── RelpProtocolError   the server's bytes are not RELP, or answer nothing we sent
        ├── RelpRefused         an rsp with a code other than 200
        └── RelpServerClosed    the server announced it closes the session (serverclose)
    """

    def __init__(self, detail: str, acknowledged: tuple[int, ...] = ()) -> None:
        super().__init__(detail)
        self.acknowledged = acknowledged


class RelpProtocolError(RelpError, title="RELP protocol error"):
    pass


class RelpRefused(RelpError, title="RELP command refused"):
    pass


class RelpServerClosed(RelpError, title="RELP server closed the session"):
    pass


@dataclass(frozen=True)
class RelpFrame:
    txnr: int
    command: str
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.txnr <= MAX_TXNR:
            raise ValueError(f"RELP txnr must be from 0 to {MAX_TXNR}, not {self.txnr}")
        if not (1 <= len(self.command) <= _MAX_COMMAND and self.command.isascii() and self.command.isalpha()):
            raise ValueError(f"RELP command must be 1 to 32 letters, not {self.command!r}")


def encode_frame(frame: RelpFrame) -> bytes:
    head = f"{frame.txnr} {frame.command} {len(frame.data)}".encode()
    return head + (b" " + frame.data if frame.data else b"") + b"\n"


@dataclass(frozen=True)
class RelpResponse:
    code: int
    message: str
    body: bytes

    @property
    def ok(self) -> bool:
        return self.code == 200


def parse_response(data: bytes) -> RelpResponse:
    """The DATA of an ``rsp``: a 3-digit code, an optional human message, optional lines."""
    head, _, body = data.partition(b"\n")
    code, _, message = head.partition(b" ")
    if len(code) != 3 or not code.isdigit():
        raise RelpProtocolError(f"RELP rsp must start with a 3-digit code, got {head[:40]!r}")
    return RelpResponse(int(code), message.decode("utf-8", "replace"), body)


class FrameDecoder:
    """Frames out of a byte stream fed in arbitrary pieces; a malformed frame raises
    :class:`RelpProtocolError` naming the field and what came instead."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[RelpFrame]:
        self._buffer += data
        frames: list[RelpFrame] = []
        while (frame := self._next()) is not None:
            frames.append(frame)
        return frames

    def _field(self, start: int, name: str, limit: int, *, digits: bool) -> tuple[bytes, int] | None:
        """The token at ``start`` up to its SP (or LF, for a DATALEN of 0), checked as far as
        the bytes received allow; None while it may still be completed."""
        end = start
        buffer = self._buffer
        while end < len(buffer) and buffer[end] not in b" \n":
            char = buffer[end : end + 1]
            if not (char.isdigit() if digits else char.isalpha()):
                kind = "digits" if digits else "letters"
                got = bytes(buffer[start : end + 1])[:40]
                raise RelpProtocolError(f"RELP {name} must be {kind}, got {got!r}")
            end += 1
            if end - start > limit:
                raise RelpProtocolError(f"RELP {name} longer than {limit} characters")
        if end == len(buffer):
            return None
        if end == start:
            raise RelpProtocolError(f"RELP {name} missing (found {bytes(buffer[start : start + 1])!r})")
        return bytes(buffer[start:end]), end

    def _next(self) -> RelpFrame | None:
        txnr = self._field(0, "txnr", _MAX_DIGITS, digits=True)
        if txnr is None:
            return None
        if self._buffer[txnr[1] : txnr[1] + 1] != b" ":
            raise RelpProtocolError("RELP frame ended after its txnr")
        command = self._field(txnr[1] + 1, "command", _MAX_COMMAND, digits=False)
        if command is None:
            return None
        if self._buffer[command[1] : command[1] + 1] != b" ":
            raise RelpProtocolError(f"RELP frame ended after its command {command[0]!r}")
        datalen = self._field(command[1] + 1, "datalen", _MAX_DIGITS, digits=True)
        if datalen is None:
            return None
        length = int(datalen[0])
        if length > MAX_ANSWER_BYTES:
            raise RelpProtocolError(f"RELP frame of {length} bytes: more than {MAX_ANSWER_BYTES} allowed")
        at = datalen[1]
        if length:
            if self._buffer[at : at + 1] != b" ":
                raise RelpProtocolError(f"RELP datalen {length} not followed by SP and data")
            at += 1
        if len(self._buffer) < at + length + 1:
            return None
        data = bytes(self._buffer[at : at + length])
        trailer = self._buffer[at + length : at + length + 1]
        if trailer != b"\n":
            raise RelpProtocolError(
                f"RELP frame txnr {int(txnr[0])}: {length} bytes of data not followed by LF "
                f"(found {bytes(trailer)!r}): its datalen is wrong"
            )
        del self._buffer[: at + length + 1]
        return RelpFrame(int(txnr[0]), command[0].decode(), data)


class RelpClient:
    """One RELP session seen from the client: commands out, answers in, and which of the
    messages sent (each with a caller's ``tag``, e.g. an audit seq) the server acknowledged.

    Messages may be pipelined (a window of unacknowledged ones); the server answers each
    txnr once. After a failure the session is over: the caller opens a new one and sends
    again every message not acknowledged (:attr:`unacknowledged`)."""

    def __init__(self, software: str = "certfleet") -> None:
        self._software = software
        self._txnr = 0
        self._open_txnr = 0
        self._close_txnr = 0
        self._pending: dict[int, int | None] = {}  # txnr -> tag (None: open or close)
        self._decoder = FrameDecoder()
        self.opened = False
        self.offers: dict[str, str] = {}

    def _command(self, command: str, data: bytes, tag: int | None) -> bytes:
        self._txnr = self._txnr % MAX_TXNR + 1
        self._pending[self._txnr] = tag
        return encode_frame(RelpFrame(self._txnr, command, data))

    def open(self) -> bytes:
        offers = f"relp_version=0\nrelp_software={self._software}\ncommands=syslog"
        frame = self._command("open", offers.encode(), None)
        self._open_txnr = self._txnr
        return frame

    def syslog(self, message: bytes, tag: int) -> bytes:
        if not self.opened:
            raise RelpProtocolError("RELP syslog before the server accepted open")
        return self._command("syslog", message, tag)

    def close(self) -> bytes:
        frame = self._command("close", b"", None)
        self._close_txnr = self._txnr
        return frame

    @property
    def unacknowledged(self) -> list[int]:
        """Tags sent and not yet acknowledged, in the order sent."""
        return [tag for tag in self._pending.values() if tag is not None]

    def receive(self, data: bytes) -> list[int]:
        """Feed what the server sent; returns the tags it acknowledged, in its order.
        Raises a :class:`RelpError` (with the tags acknowledged before it) on a frame that is
        malformed, answers nothing pending, refuses, or closes the session."""
        acknowledged: list[int] = []
        try:
            for frame in self._decoder.feed(data):
                tag = self._answer(frame)
                if tag is not None:
                    acknowledged.append(tag)
        except RelpError as exc:
            raise type(exc)(exc.detail, tuple(acknowledged)) from exc
        return acknowledged

    def _answer(self, frame: RelpFrame) -> int | None:
        if frame.command == "serverclose":
            raise RelpServerClosed("RELP server closed the session (serverclose)")
        if frame.command != "rsp":
            raise RelpProtocolError(f"RELP server sent command {frame.command!r}; a client expects rsp")
        if frame.txnr not in self._pending:
            raise RelpProtocolError(f"RELP rsp for txnr {frame.txnr}, which is not awaiting an answer")
        is_open = not self.opened and frame.txnr == self._open_txnr
        tag = self._pending.pop(frame.txnr)
        if frame.txnr == self._close_txnr:
            return None  # librelp answers close with an empty rsp: nothing to check
        response = parse_response(frame.data)
        if not response.ok:
            what = "open" if is_open else f"txnr {frame.txnr}"
            raise RelpRefused(f"RELP server refused {what}: {response.code} {response.message}".rstrip())
        if is_open:
            self._accept_offers(response.body)
        return tag

    def _accept_offers(self, body: bytes) -> None:
        for line in body.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition("=")
            self.offers[name] = value
        if self.offers.get("relp_version") != "0":
            version = self.offers.get("relp_version", "none")
            raise RelpProtocolError(f"RELP server offers relp_version {version}; only 0 is known")
        if "syslog" not in self.offers.get("commands", "").split(","):
            raise RelpProtocolError(
                f"RELP server does not offer the syslog command ({self.offers.get('commands', '')!r})"
            )
        self.opened = True

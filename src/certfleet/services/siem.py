"""Audit entries streamed to a SIEM collector, in order and at least once.

The audit log is the outbox: entries have a gap-free ``seq`` (appends hold the chain's head
locked), and a cursor row records the last one delivered. Each round (the ``audit.siem``
background job, exclusive: one node sends at a time) reads the entries after the cursor,
writes them to the collector over TLS and moves the cursor, which a conditional update
never sets back. A collector outage leaves the cursor where it was; the next round connects
again and resumes after it.

With ``transport = "relp"`` (recommended) each entry is a RELP ``syslog`` command
(:mod:`certfleet.audit._relp`) that the collector acknowledges once it has queued it; a
window of ``batch_size`` entries is pipelined, and the cursor moves only over the entries
acknowledged, in seq order. A connection that breaks or whose acknowledgements do not come
within ``ack_timeout_seconds`` is dropped, and the next one starts again at the first entry
not acknowledged: no entry is ever counted delivered on the kernel's word. (Should the
collector refuse one entry, which imrelp does only when it cannot queue it, the entries
already in flight behind it arrive before it and again after it: each carries its seq.)

Plain TCP (``transport = "tcp"``) has no acknowledgement from the collector's application:
bytes the kernel accepted may still die in socket buffers with the collector. So every new
connection first sends again the last ``replay_entries`` entries before the cursor. With
either transport a collector may see an entry twice (same seq and hash): delivery is at
least once, never at most once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import select
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from certfleet.audit import AuditEntry
from certfleet.audit._relp import RelpClient, RelpError
from certfleet.audit._syslog import format_entry, format_json_line, format_rfc5424
from certfleet.clock import Clock
from certfleet.config._siem import SiemSettings
from certfleet.errors import CertfleetError
from certfleet.services._ports import UnitOfWorkFactory

__all__ = [
    "SiemConnection",
    "SiemCursor",
    "SiemRound",
    "SiemSender",
    "SiemUnavailable",
    "tls_connector",
]


class SiemUnavailable(CertfleetError, title="SIEM collector unavailable"):
    """The collector could not be reached or the connection broke; nothing was lost."""


class SiemCursor(Protocol):
    def position(self) -> int: ...

    def advance(self, expected: int, delivered: int, now: dt.datetime) -> bool: ...

    def backlog(self) -> int: ...


class SiemConnection(Protocol):
    def alive(self) -> bool:
        """False when the collector closed the connection (it never sends anything)."""
        ...

    def send(self, data: bytes) -> None: ...

    def receive(self, timeout_seconds: float) -> bytes | None:
        """What the collector sent (b"" once it closed), or None if nothing within the time."""
        ...

    def close(self) -> None: ...


class _TlsConnection:
    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock

    def alive(self) -> bool:
        readable, _, _ = select.select([self._sock], [], [], 0)
        if not readable:
            return True
        # Readable: a TLS 1.3 session ticket (still alive), or the end of the connection.
        timeout = self._sock.gettimeout()
        self._sock.setblocking(False)
        try:
            return bool(self._sock.recv(1))  # b"": closed (close_notify or FIN)
        except ssl.SSLWantReadError:
            return True  # only TLS records without application data
        except OSError:
            return False
        finally:
            self._sock.settimeout(timeout)

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def receive(self, timeout_seconds: float) -> bytes | None:
        timeout = self._sock.gettimeout()
        self._sock.settimeout(max(timeout_seconds, 0.001))
        try:
            return self._sock.recv(65536)
        except TimeoutError:
            return None
        finally:
            self._sock.settimeout(timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


def tls_connector(settings: SiemSettings) -> Callable[[], SiemConnection]:
    """Connections to the collector of ``settings``: TLS 1.2 or later, the server's
    certificate checked against ``ca_file`` and its name; a client certificate if given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.client_cert is not None and settings.client_key is not None:
        context.load_cert_chain(settings.client_cert, settings.client_key)
    server_name = settings.server_name or settings.host

    def connect() -> SiemConnection:
        raw = socket.create_connection(
            (settings.host, settings.port), timeout=settings.connect_timeout_seconds
        )
        try:
            return _TlsConnection(context.wrap_socket(raw, server_hostname=server_name))
        except BaseException:
            raw.close()
            raise

    return connect


@dataclass(frozen=True)
class SiemRound:
    """What one round did: entries written (replayed or resent ones included) and the cursor
    after."""

    sent: int
    delivered_seq: int
    reconnected: bool


class SiemSender:
    """Sends the audit log after the cursor; keeps one connection between rounds."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        cursor: SiemCursor,
        settings: SiemSettings,
        clock: Clock,
        *,
        connect: Callable[[], SiemConnection] | None = None,
    ) -> None:
        self._uow = uow
        self._cursor = cursor
        self._settings = settings
        self._clock = clock
        self._connect = connect or tls_connector(settings)
        self._hostname = settings.hostname or socket.gethostname()
        self._connection: SiemConnection | None = None
        self._relp: RelpClient | None = None  # the RELP session on _connection

    @property
    def interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=self._settings.interval_seconds)

    def backlog(self) -> int:
        """Entries not yet delivered (the gauge ``certfleet_siem_undelivered_entries``)."""
        return self._cursor.backlog()

    def close(self) -> None:
        if self._connection is not None and self._relp is not None and self._relp.opened:
            with contextlib.suppress(OSError):  # a courtesy: the collector may be gone
                self._connection.send(self._relp.close())
        self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._relp = None

    def _where(self) -> str:
        return f"SIEM collector {self._settings.host}:{self._settings.port}"

    def _read(self, after_seq: int, limit: int) -> list[AuditEntry]:
        with self._uow(read_only=True) as uow:
            return list(itertools.islice(uow.audit.entries(after_seq=after_seq), limit))

    def _open(self) -> SiemConnection:
        try:
            return self._connect()
        except OSError as exc:  # ssl.SSLError included
            where = f"{self._settings.host}:{self._settings.port}"
            raise SiemUnavailable(f"SIEM collector {where} unreachable: {exc}") from exc

    def deliver_once(self) -> SiemRound:
        """Send every entry after the cursor, batch by batch, moving the cursor after each
        (with RELP, over the entries acknowledged). Raises :class:`SiemUnavailable` when the
        collector cannot be reached, refuses, or the connection breaks; the cursor then
        stays at the last batch written (RELP: the last entry acknowledged)."""
        if self._settings.transport == "relp":
            return self._deliver_relp()
        return self._deliver_tcp()

    def _deliver_tcp(self) -> SiemRound:
        sent = 0
        reconnected = False
        position = self._cursor.position()
        while True:
            start = position
            if self._connection is not None and not self._connection.alive():
                self.close()
            if self._connection is None:
                self._connection = self._open()
                reconnected = True
                start = max(0, position - self._settings.replay_entries)
            limit = self._settings.batch_size + (position - start)
            entries = self._read(start, limit)
            if not entries:
                return SiemRound(sent, position, reconnected)
            fmt = self._settings.format
            data = b"".join(format_entry(e, fmt, hostname=self._hostname) for e in entries)
            try:
                self._connection.send(data)
            except OSError as exc:
                self.close()
                where = f"{self._settings.host}:{self._settings.port}"
                raise SiemUnavailable(f"SIEM collector {where}: connection lost: {exc}") from exc
            sent += len(entries)
            last = entries[-1].seq
            if last > position:
                if not self._cursor.advance(position, last, self._clock.now()):
                    # Another sender moved the cursor (a lease that changed hands): stop here.
                    return SiemRound(sent, self._cursor.position(), reconnected)
                position = last
            if len(entries) < limit:
                return SiemRound(sent, position, reconnected)

    # RELP: the cursor moves only over acknowledged entries.

    def _relp_message(self, entry: AuditEntry) -> bytes:
        if self._settings.format == "json":
            return format_json_line(entry, hostname=self._hostname).rstrip(b"\n")
        return format_rfc5424(entry, hostname=self._hostname)

    def _await(
        self, session: RelpClient, acknowledged: set[int], done: Callable[[RelpClient], bool], timeout: float
    ) -> None:
        """Read the collector's answers into ``acknowledged`` until ``done(session)``; raises
        :class:`SiemUnavailable` when they stop coming, the connection ends or the collector
        refuses (the tags it acknowledged before are in ``acknowledged`` all the same)."""
        assert self._connection is not None
        deadline = time.monotonic() + timeout
        while not done(session):
            try:
                data = self._connection.receive(deadline - time.monotonic())
            except OSError as exc:
                raise SiemUnavailable(f"{self._where()}: connection lost: {exc}") from exc
            if data is None:
                waiting = len(session.unacknowledged) or "the open"
                raise SiemUnavailable(
                    f"{self._where()}: no acknowledgement within {timeout:g} s ({waiting} awaited)"
                )
            if not data:
                raise SiemUnavailable(f"{self._where()}: the collector closed the connection")
            try:
                acknowledged.update(session.receive(data))
            except RelpError as exc:
                acknowledged.update(exc.acknowledged)
                raise SiemUnavailable(f"{self._where()}: {exc.detail}") from exc

    def _open_relp(self) -> tuple[RelpClient, bool]:
        """The open RELP session (and whether it is new), or :class:`SiemUnavailable`."""
        if self._connection is not None and self._relp is not None:
            # Between rounds nothing is awaited: anything the collector sent (serverclose,
            # or the end of the connection) means this session is over.
            try:
                idle = self._connection.receive(0)
            except OSError:
                idle = b""
            if idle is None:
                return self._relp, False
        self._drop()
        self._connection = self._open()
        session = self._relp = RelpClient(software="certfleet")
        try:
            self._connection.send(session.open())
            self._await(session, set(), lambda s: s.opened, self._settings.connect_timeout_seconds)
        except (OSError, SiemUnavailable) as exc:
            self._drop()
            # A collector that does not permit this client's certificate ends here too.
            reason = (
                exc.detail.removeprefix(f"{self._where()}: ")
                if isinstance(exc, SiemUnavailable)
                else str(exc)
            )
            raise SiemUnavailable(f"{self._where()}: RELP session not opened: {reason}") from exc
        return session, True

    def _deliver_relp(self) -> SiemRound:
        sent = 0
        reconnected = False
        position = self._cursor.position()
        while True:
            session, fresh = self._open_relp()
            reconnected = reconnected or fresh
            assert self._connection is not None
            entries = self._read(position, self._settings.batch_size)
            if not entries:
                return SiemRound(sent, position, reconnected)
            acknowledged: set[int] = set()
            failure: SiemUnavailable | None = None
            try:
                # The window: every entry of the batch sent before any answer is awaited.
                self._connection.send(b"".join(session.syslog(self._relp_message(e), e.seq) for e in entries))
                sent += len(entries)
                timeout = self._settings.ack_timeout_seconds
                self._await(session, acknowledged, lambda s: not s.unacknowledged, timeout)
            except OSError as exc:
                failure = SiemUnavailable(f"{self._where()}: connection lost: {exc}")
            except SiemUnavailable as exc:
                failure = exc
            delivered = position  # the acknowledged prefix, in seq order: never past a gap
            for entry in entries:
                if entry.seq not in acknowledged:
                    break
                delivered = entry.seq
            if delivered > position:
                if not self._cursor.advance(position, delivered, self._clock.now()):
                    self._drop()  # another sender moved the cursor: stop here
                    return SiemRound(sent, self._cursor.position(), reconnected)
                position = delivered
            if failure is not None:
                self._drop()  # the next connection resends from the first unacknowledged
                raise failure
            if len(entries) < self._settings.batch_size:
                return SiemRound(sent, position, reconnected)

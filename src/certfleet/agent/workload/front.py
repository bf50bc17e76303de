"""The Workload API's socket: attestation in front of gRPC.

gRPC's Python server never shows a handler its connection's socket, so it cannot ask the
kernel who called (SO_PEERCRED). The agent therefore accepts on the public socket itself,
reads the peer's credentials and takes a pidfd on its process, and relays the bytes to the
gRPC server on a private socket (in a 0700 directory) over a connection bound to an
address of its own: the handler finds the caller by that address. A connection whose
address the front did not make is refused by the handler (nobody else is attested), and
when the caller's process exits (its pidfd becomes readable) both connections are closed,
which ends any stream mid-flight (SPIRE's peertracker does the same).

The public socket's directory is 0755 and the socket 0777, as SPIRE's: attestation, not the
file mode, decides who gets what.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from certfleet.agent.workload.attestation import (
    ExecutableHashes,
    PeerCredentials,
    Workload,
    attest,
    peer_credentials,
    start_time,
)
from certfleet.agent.workload.errors import AttestationFailed, WorkloadError

__all__ = ["AttestingFront", "Caller"]

_log = logging.getLogger("certfleet.agent.workload")
_CHUNK = 65536


@dataclass
class Caller:
    credentials: PeerCredentials
    started: int
    pidfd: int
    closers: list[asyncio.StreamWriter] = field(default_factory=list)

    def attest(self, hashes: ExecutableHashes, *, may_hash: bool = True) -> Workload | None:
        return attest(self.credentials, self.started, hashes, may_hash=may_hash)


class AttestingFront:
    def __init__(self, socket_path: Path, backend_path: Path) -> None:
        self.socket_path = socket_path
        self._backend = str(backend_path)
        self._prefix = f"certfleet-workload-{os.getpid()}-{secrets.token_hex(6)}"
        self._numbers = itertools.count(1)
        self.callers: dict[str, Caller] = {}
        self._server: asyncio.base_events.Server | None = None
        self._bound = False

    def caller(self, peer: str) -> Caller | None:
        """The caller behind gRPC's ``context.peer()`` (``unix-abstract:<address>``)."""
        _, _, address = peer.partition(":")
        return self.callers.get(address.lstrip("@\x00"))

    async def start(self) -> None:
        directory = self.socket_path.parent
        if not directory.exists():
            directory.mkdir(parents=True)
            directory.chmod(0o755)  # whatever the umask; a directory that exists keeps its mode
        if self.socket_path.is_socket():
            if _answers(self.socket_path):
                raise WorkloadError(f"another process serves the Workload API at {self.socket_path}")
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()  # left by an agent that did not stop cleanly
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.socket_path))
        except OSError as exc:
            sock.close()
            raise WorkloadError(f"cannot listen on {self.socket_path}: {exc.strerror}") from exc
        self._bound = True
        self.socket_path.chmod(0o777)
        sock.listen(1024)
        self._server = await asyncio.start_unix_server(self._accept, sock=sock, limit=_CHUNK)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for caller in list(self.callers.values()):
                self._close(caller)
            await self._server.wait_closed()
            self._server = None
        if self._bound:  # never another agent's socket, when this one could not start
            self._bound = False
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            caller = self._identify(writer.get_extra_info("socket"))
        except (AttestationFailed, OSError) as exc:
            _log.info("Workload API: refused a connection: %s", exc)
            writer.close()
            return
        address = f"{self._prefix}-{next(self._numbers)}"
        loop = asyncio.get_running_loop()
        try:
            inner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            inner.bind("\0" + address)
            inner.setblocking(False)
            await loop.sock_connect(inner, self._backend)
            back_reader, back_writer = await asyncio.open_unix_connection(sock=inner, limit=_CHUNK)
        except OSError as exc:
            _log.error("Workload API: cannot reach its gRPC server: %s", exc)
            os.close(caller.pidfd)
            writer.close()
            return
        caller.closers += [writer, back_writer]
        self.callers[address] = caller
        loop.add_reader(caller.pidfd, self._close, caller)
        try:
            await asyncio.gather(_pump(reader, back_writer), _pump(back_reader, writer))
        finally:
            self.callers.pop(address, None)
            self._close(caller)

    def _identify(self, transport_socket: socket.socket) -> Caller:
        credentials = peer_credentials(transport_socket)
        try:
            pidfd = os.pidfd_open(credentials.pid)
        except OSError as exc:
            raise AttestationFailed(f"process {credentials.pid} is gone") from exc
        try:
            return Caller(credentials, start_time(credentials.pid), pidfd)
        except AttestationFailed:
            os.close(pidfd)
            raise

    def _close(self, caller: Caller) -> None:
        """The caller's process exited (or its connection ended): close both sides."""
        if caller.pidfd >= 0:
            asyncio.get_running_loop().remove_reader(caller.pidfd)
            os.close(caller.pidfd)
            caller.pidfd = -1
        for writer in caller.closers:
            writer.close()


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()

"""Workload attestation on a Unix socket: who is at the other end, from the kernel.

SO_PEERCRED gives the uid, gid and pid the peer had when it connected; the pid then names
``/proc/PID/exe``, whose path and SHA-256 become selectors as well (SPIRE's ``unix``
workload attestor: ``unix:uid:N``, ``unix:gid:N``, ``unix:path:P``, ``unix:sha256:HEX``).
A pid is only an identity while the process lives: the caller holds a pidfd taken at
accept time and compares the process's start time (field 22 of ``/proc/PID/stat``) before
and after reading, so a pid that exited and was reused is never attested as the old one.
Reading another user's ``/proc/PID/exe`` needs root (or CAP_SYS_PTRACE), as with SPIRE.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from certfleet.agent.workload.errors import AttestationFailed

__all__ = ["ExecutableHashes", "PeerCredentials", "Workload", "attest", "peer_credentials", "start_time"]

_UCRED = struct.Struct("3i")


@dataclass(frozen=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Workload:
    """An attested process: its credentials, its start time (which, with the pid, names
    one process for the life of the host) and its selectors."""

    credentials: PeerCredentials
    started: int
    selectors: frozenset[str]


def peer_credentials(sock: socket.socket) -> PeerCredentials:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    if pid <= 0:
        raise AttestationFailed("the peer has no process id (a socket passed from another namespace?)")
    return PeerCredentials(pid, uid, gid)


def start_time(pid: int, proc: Path = Path("/proc")) -> int:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    try:
        stat = (proc / str(pid) / "stat").read_bytes()
    except OSError as exc:
        raise AttestationFailed(f"process {pid} is gone") from exc
    # The command name (field 2) is in parentheses and may itself hold spaces and ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19])


class ExecutableHashes:
    """SHA-256 of executables, remembered by (device, inode, size, mtime): a fleet of
    workloads runs few distinct binaries, and rehashing a 100 MiB interpreter per call
    would cost more than everything else the Workload API does."""

    def __init__(self, limit: int = 1024) -> None:
        self._known: dict[tuple[int, int, int, int], str] = {}
        self._limit = limit

    def known(self, exe: Path) -> str | None:
        """The digest when this very file was hashed before (a stat, no read)."""
        info = exe.stat()
        return self._known.get((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns))

    def digest(self, exe: Path) -> str:
        with exe.open("rb") as handle:
            info = os.fstat(handle.fileno())
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            known = self._known.get(key)
            if known is not None:
                return known
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if len(self._known) >= self._limit:
            self._known.clear()
        self._known[key] = digest
        return digest


def attest(
    credentials: PeerCredentials,
    started: int,
    hashes: ExecutableHashes,
    proc: Path = Path("/proc"),
    *,
    may_hash: bool = True,
) -> Workload | None:
    """The selectors of the process ``credentials`` names, provided it is still the one that
    started at ``started`` once they have been read (else :class:`AttestationFailed`).
    With ``may_hash`` false, None when the executable would have to be read and hashed (the
    event loop then does that in a thread)."""
    pid = credentials.pid
    exe = proc / str(pid) / "exe"
    try:
        path = str(exe.readlink())
        digest = hashes.digest(exe) if may_hash else hashes.known(exe)
    except OSError as exc:
        raise AttestationFailed(f"cannot read the executable of process {pid}: {exc.strerror}") from exc
    if digest is None:
        return None
    if start_time(pid, proc) != started:
        raise AttestationFailed(f"process {pid} exited and its pid was reused")
    selectors = {f"unix:uid:{credentials.uid}", f"unix:gid:{credentials.gid}", f"unix:sha256:{digest}"}
    # A binary replaced on disk while it runs reads as "/usr/bin/app (deleted)": no path then.
    if not path.endswith(" (deleted)"):
        selectors.add(f"unix:path:{path}")
    return Workload(credentials, started, frozenset(selectors))

"""One deployment of a certificate at a time on a host: an exclusive ``flock`` per
certificate, held for the whole obtain-deploy-verify sequence. The kernel drops it when the
process dies, even by SIGKILL, so a crash never leaves a stale lock behind."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from certfleet.agent.errors import DeploymentBusy

__all__ = ["CertificateLock"]


class CertificateLock:
    def __init__(self, path: Path, name: str) -> None:
        self._path = path
        self._name = name
        self._fd: int | None = None

    def __enter__(self) -> CertificateLock:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DeploymentBusy(f"another agent process is deploying {self._name}") from None
        self._fd = fd
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

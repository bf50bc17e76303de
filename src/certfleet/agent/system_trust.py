"""certfleet's roots in the host's system trust store (``trust_store: system``).

Each root certfleet publishes is one file, ``certfleet-<first 16 hex of its SHA-256>.crt``,
in the anchors folder (Debian: ``/usr/local/share/ca-certificates``), and the update command
(``update-ca-certificates``) rebuilds the bundle every TLS client reads. Only files named
``certfleet-*.crt`` are ever written or removed: the host's own anchors are not ours.

A change is all or nothing: the previous ``certfleet-*`` files are kept in memory, the new
set is written (each file atomically) and the obsolete ones removed, then the command runs;
if it fails (or cannot run), the previous files are put back and the command is run again
so the bundle matches them, and the failure is raised with the command's last line of
error. A set already in place runs nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.agent._trust_config import TrustSettings
from certfleet.agent.errors import AgentError
from certfleet.fs import write_atomic
from certfleet.x509 import fingerprint_sha256

__all__ = ["PREFIX", "SystemTrustStore", "TrustStoreUpdateFailed", "TrustSync"]

PREFIX = "certfleet-"
UPDATE_TIMEOUT_SECONDS = 300.0


class TrustStoreUpdateFailed(AgentError):
    """The update command failed: the previous roots were restored."""


@dataclass(frozen=True)
class TrustSync:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def _file_name(root: x509.Certificate) -> str:
    return f"{PREFIX}{fingerprint_sha256(root)[:16]}.crt"


class SystemTrustStore:
    def __init__(self, settings: TrustSettings) -> None:
        self._dir = settings.anchors_dir
        self._command = settings.update_command

    def current(self) -> dict[str, bytes]:
        """certfleet's files in the anchors folder now, by name."""
        if not self._dir.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in sorted(self._dir.glob(f"{PREFIX}*.crt")) if p.is_file()}

    def sync(self, roots: Sequence[x509.Certificate]) -> TrustSync:
        """Make certfleet's files exactly ``roots`` (self-signed CA certificates)."""
        wanted = {_file_name(r): r.public_bytes(Encoding.PEM) for r in roots}
        before = self.current()
        if before == wanted:
            return TrustSync()
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        try:
            self._write(wanted, before)
            self._update()
        except TrustStoreUpdateFailed as failure:
            self._write(before, wanted)
            try:
                self._update()
            except TrustStoreUpdateFailed as again:
                raise TrustStoreUpdateFailed(
                    f"{failure.detail}; the previous roots were put back but the update failed again: "
                    f"{again.detail}"
                ) from failure
            raise
        return TrustSync(tuple(sorted(set(wanted) - set(before))), tuple(sorted(set(before) - set(wanted))))

    def _write(self, files: dict[str, bytes], replacing: dict[str, bytes]) -> None:
        for name, content in files.items():
            if replacing.get(name) != content:
                write_atomic(self._dir / name, content, mode=0o644)
        for name in set(replacing) - set(files):
            (self._dir / name).unlink(missing_ok=True)

    def _update(self) -> None:
        try:
            done = subprocess.run(
                list(self._command),
                capture_output=True,
                timeout=UPDATE_TIMEOUT_SECONDS,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TrustStoreUpdateFailed(f"{self._command[0]} could not run: {exc}") from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
            last = lines[-1] if lines else f"exit status {done.returncode}"
            raise TrustStoreUpdateFailed(f"{self._command[0]} failed (exit {done.returncode}): {last}")

"""Safe deployment: versioned directories and one symlink switch.

Every certificate has a store beside its first target (the key's, when there is one)::

    /etc/nginx/tls/web.key        -> /etc/nginx/tls/.certfleet-agent/web/current/key.pem
    /etc/nginx/tls/web.crt        -> /etc/nginx/tls/.certfleet-agent/web/current/fullchain.pem
    /etc/nginx/tls/.certfleet-agent/web/
        current -> v20261128T120000-3f2a...   (the one switch)
        previous -> v20261001T080000-91bc...  (what a rollback restores)
        pending                               (a switch not yet verified)
        v20261128T120000-3f2a.../key.pem, fullchain.pem, ...

A new version is written in full (each file fsynced, O_EXCL, its final mode and owner from the
first byte) in a staging directory, which is then renamed into place and its parent fsynced.
Only then does ``current`` move, by renaming a new symlink over it: one atomic step switches
every file of the certificate together, so a reader resolving the key and the certificate
always gets the same version, never a mismatched pair and never a half-written or empty file.
Renaming the files one by one could not give that: between two renames the key of one
version sits beside the certificate of another. A write error (a full disk) happens before
anything visible changed, so the deployed files stay untouched.

On the first deployment, regular files already at the targets are copied into a version
first and ``current`` points there before each target becomes a symlink, so every path keeps
its old content until the one switch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import grp
import json
import os
import pwd
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certfleet.agent.config import KEY_BEARING, CertificateSpec, FileTarget
from certfleet.agent.errors import AgentConfigError, UnsafeTarget, WriteFailed
from certfleet.agent.targets import Material
from certfleet.errors import CertfleetError
from certfleet.x509 import load_certificates

__all__ = ["STORE_DIR", "Switch", "VersionStore"]

STORE_DIR = ".certfleet-agent"
ROLE_FILES = {
    "key": "key.pem",
    "cert": "cert.pem",
    "chain": "chain.pem",
    "fullchain": "fullchain.pem",
    "combined": "combined.pem",
    "pkcs12": "keystore.p12",
    "jks": "keystore.jks",
}
KEEP_VERSIONS = 3


@dataclass(frozen=True)
class Switch:
    """A switch of ``current`` to ``version``; ``previous`` is what it replaced (None on a
    first deployment with nothing to adopt)."""

    version: str
    previous: str | None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ids(owner: str | None, group: str | None) -> tuple[int, int]:
    try:
        uid = pwd.getpwnam(owner).pw_uid if owner else -1
    except KeyError:
        raise AgentConfigError(f"unknown user {owner!r}") from None
    try:
        gid = grp.getgrnam(group).gr_gid if group else -1
    except KeyError:
        raise AgentConfigError(f"unknown group {group!r}") from None
    return uid, gid


def _write(path: Path, data: bytes, mode: int, uid: int, gid: int) -> None:
    if not data:
        raise WriteFailed(f"refusing to write an empty {path.name}")  # never a 0-byte file
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


class VersionStore:
    def __init__(self, spec: CertificateSpec, allowed_dirs: tuple[Path, ...], now: dt.datetime) -> None:
        self.spec = spec
        self._allowed = allowed_dirs
        self._now = now
        anchor = spec.file("key") or spec.files[0]
        self.root = anchor.path.parent / STORE_DIR / spec.name
        self.current = self.root / "current"
        self.previous = self.root / "previous"
        self._pending = self.root / "pending"

    # -- reading --------------------------------------------------------------------------

    def link_target(self, target: FileTarget) -> Path:
        return self.current / ROLE_FILES[target.kind]

    def _version_of(self, link: Path) -> str | None:
        try:
            return str(link.readlink())
        except FileNotFoundError:
            return None

    def current_version(self) -> str | None:
        return self._version_of(self.current)

    def material(self, version: str | None = None) -> Material | None:
        """The key and chain of a version (default: the current one), if it has both."""
        version = version or self.current_version()
        if version is None:
            return None
        directory = self.root / version
        try:
            key = serialization.load_pem_private_key((directory / "key.pem").read_bytes(), None)
            certs = load_certificates((directory / "fullchain.pem").read_bytes())
            return Material(key, certs[0], tuple(certs[1:]))
        except (OSError, ValueError, TypeError, CertfleetError):
            return None

    def leaf(self, version: str) -> x509.Certificate | None:
        """The end-entity certificate of a version (also of an adopted one without a key)."""
        for kind in ("fullchain", "cert", "combined"):
            try:
                return load_certificates((self.root / version / ROLE_FILES[kind]).read_bytes())[0]
            except (OSError, CertfleetError):
                continue
        return None

    def targets_linked(self) -> bool:
        """Whether every target is this store's symlink (false after a target was added)."""
        return all(
            t.path.is_symlink() and str(t.path.readlink()) == str(self.link_target(t))
            for t in self.spec.files
        )

    # -- checks ---------------------------------------------------------------------------

    def check_targets(self) -> None:
        """Refuse targets whose directory resolves outside the allowed directories, a target
        that is a symlink this agent did not make, and a store that is a symlink."""
        roots = [Path(os.path.realpath(d)) for d in self._allowed]
        for target in self.spec.files:
            parent = Path(os.path.realpath(target.path.parent))
            if not parent.is_dir():
                raise UnsafeTarget(f"{target.path}: directory {target.path.parent} does not exist")
            if not _inside(parent, roots):
                raise UnsafeTarget(
                    f"{target.path}: its directory resolves to {parent}, outside the allowed_dirs"
                )
            if not os.path.lexists(target.path):
                continue
            mode = os.lstat(target.path).st_mode
            if stat.S_ISLNK(mode):
                points_to = str(target.path.readlink())
                if points_to != str(self.link_target(target)):
                    raise UnsafeTarget(
                        f"{target.path} is a symlink to {points_to}, which this agent did not make: "
                        "refusing to write through it"
                    )
            elif not stat.S_ISREG(mode):
                raise UnsafeTarget(f"{target.path} exists and is not a regular file")
        for path in (self.root.parent, self.root):
            if path.is_symlink():
                raise UnsafeTarget(f"{path} is a symlink: refusing to keep versions through it")

    # -- writing --------------------------------------------------------------------------

    def _ensure_root(self) -> None:
        for path in (self.root.parent, self.root):
            if not path.is_dir():
                path.mkdir(mode=0o755)
                _fsync_dir(path.parent)

    def _name(self, suffix: str) -> str:
        return f"v{self._now:%Y%m%dT%H%M%S}-{suffix}-{secrets.token_hex(3)}"

    def stage(self, contents: dict[str, bytes], suffix: str) -> str:
        """Write a complete new version; return its name. On any error nothing visible
        changed: the half-written staging directory is removed and WriteFailed raised."""
        version = self._name(suffix)
        key_target = self.spec.file("key")
        with self._new_version(
            version,
            lambda exc: (
                f"cannot write the new files of {self.spec.name} in {self.root}: "
                f"{exc.strerror or exc}; the deployed files are untouched"
            ),
        ) as staging:
            for kind, data in contents.items():
                target = self.spec.file(kind)
                if target is None:  # kept for re-rendering: the key's owner, the usual modes
                    owner = key_target.owner if key_target else None
                    group = key_target.group if key_target else None
                    mode = 0o600 if kind in KEY_BEARING else 0o644
                else:
                    owner, group, mode = target.owner, target.group, target.mode
                _write(staging / ROLE_FILES[kind], data, mode, *_ids(owner, group))
        return version

    @contextmanager
    def _new_version(self, version: str, failed: Callable[[OSError], str]) -> Iterator[Path]:
        """A private staging directory to fill, published as ``version`` (one rename) when the
        block ends. On any error it is removed; an OSError becomes WriteFailed(failed(exc))."""
        self._ensure_root()
        staging = self.root / f".staging-{secrets.token_hex(6)}"
        try:
            staging.mkdir(mode=0o700)
            yield staging
            staging.chmod(0o755)  # traversable by the service; each file keeps its own mode
            _fsync_dir(staging)
            staging.rename(self.root / version)
            _fsync_dir(self.root)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise WriteFailed(failed(exc)) from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _adopt(self) -> str | None:
        """Copy regular files found at the targets into a version (their modes and owners
        kept), so a rollback of the first deployment restores exactly them."""
        found = [t for t in self.spec.files if os.path.lexists(t.path) and not t.path.is_symlink()]
        if not found:
            return None
        version = self._name("adopted")
        with self._new_version(
            version, lambda exc: f"cannot keep a copy of the files at the targets of {self.spec.name}: {exc}"
        ) as staging:
            for target in found:
                info = target.path.stat()
                data = target.path.read_bytes()
                if data:
                    _write(
                        staging / ROLE_FILES[target.kind],
                        data,
                        stat.S_IMODE(info.st_mode),
                        info.st_uid,
                        info.st_gid,
                    )
        return version

    def _point(self, link: Path, version: str) -> None:
        temporary = self.root / f".link-{secrets.token_hex(6)}"
        temporary.symlink_to(version)
        temporary.replace(link)  # rename(2): atomic, the old link or the new one
        _fsync_dir(self.root)

    def link_targets(self) -> None:
        """Make each target a symlink into ``current`` (a no-op for those that already are)."""
        for target in self.spec.files:
            want = str(self.link_target(target))
            if target.path.is_symlink() and str(target.path.readlink()) == want:
                continue
            temporary = target.path.with_name(f".{target.path.name}.certfleet-{secrets.token_hex(6)}")
            temporary.symlink_to(want)
            temporary.replace(target.path)
            _fsync_dir(target.path.parent)

    def deploy(self, contents: dict[str, bytes], suffix: str) -> Switch:
        """Stage ``contents`` and switch ``current`` to it. The ``pending`` marker stays until
        :meth:`finish`: a restart after a crash then verifies (or rolls back) the switch."""
        self.check_targets()
        version = self.stage(contents, suffix)
        previous = self.current_version()
        try:
            if previous is None:
                previous = self._adopt()
                if previous is not None:
                    self._point(self.current, previous)
            self.link_targets()
            marker = json.dumps({"version": version, "previous": previous}).encode()
            temporary = self.root / f".pending-{secrets.token_hex(6)}"
            _write(temporary, marker, 0o600, -1, -1)
            temporary.replace(self._pending)
            self._point(self.current, version)
            if previous is not None:
                self._point(self.previous, previous)
        except OSError as exc:
            raise WriteFailed(f"cannot switch {self.spec.name} to its new files: {exc}") from exc
        return Switch(version, previous)

    def rollback(self, switch: Switch) -> bool:
        """Point ``current`` back at the previous version; False when there is none."""
        if switch.previous is None or not (self.root / switch.previous).is_dir():
            return False
        self._point(self.current, switch.previous)
        return True

    def pending(self) -> Switch | None:
        """The switch a crashed run left unverified, if ``current`` is still on it."""
        try:
            marker = json.loads(self._pending.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            self._pending.unlink(missing_ok=True)
            return None
        switch = Switch(str(marker["version"]), marker.get("previous"))
        if self.current_version() != switch.version:
            self._pending.unlink(missing_ok=True)  # the crash came before the switch
            return None
        return switch

    def finish(self) -> None:
        """The switch was verified (or rolled back): drop the marker and old versions."""
        self._pending.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            _fsync_dir(self.root)
        self.prune()

    def prune(self, keep: int = KEEP_VERSIONS) -> None:
        if not self.root.is_dir():
            return
        protected = {self.current_version(), self._version_of(self.previous)}
        for entry in self.root.iterdir():
            if entry.name.startswith((".staging-", ".link-", ".pending-")):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        entries = [
            e for e in self.root.iterdir() if e.name.startswith("v") and e.is_dir() and not e.is_symlink()
        ]
        # Newest first by when their files were written (names share a second on fast runs).
        entries.sort(key=lambda e: (e.stat().st_mtime_ns, e.name), reverse=True)
        for name in [e.name for e in entries][keep:]:
            if name not in protected:
                shutil.rmtree(self.root / name, ignore_errors=True)

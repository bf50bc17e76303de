"""The filesystem scanner: walk paths, open only regular files, never block, never loop.

Hostile trees are expected: FIFOs (opening one for reading blocks until a writer comes),
devices, sockets, symlink loops, files that grow or are swapped while we look. So each entry
is ``lstat``-ed first, opened with ``O_NONBLOCK`` (and ``O_NOFOLLOW`` unless symlinks are
followed), checked again with ``fstat`` on the open descriptor, and read up to the size cap
plus one byte. Symlinks named on the command line are followed, like ``find -H``; those met
while walking only with ``follow_symlinks``, and then each directory is entered once
(by device and inode), which ends loops. A planted file cannot stall the walk either: key
derivations are capped and each file has a time budget (see ``keystores``); a file over it
is skipped with the reason, and the walk goes on.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from certfleet.discovery._lenient import lenient_parsing
from certfleet.discovery._limits import DEFAULT_MAX_FILE_SIZE
from certfleet.discovery.errors import BadTarget
from certfleet.discovery.formats import read_material
from certfleet.discovery.keystores import (
    DEFAULT_FILE_BUDGET_SECONDS,
    JCEKS_MAX_ITERATIONS,
    MAX_KDF_ITERATIONS,
    Budget,
    OverBudget,
    Unlock,
)
from certfleet.discovery.observers import NullObserver, ScanObserver
from certfleet.discovery.outcomes import FileOutcome, FileStatus

__all__ = ["DEFAULT_MAX_FILE_SIZE", "FileScanOptions", "FileScanResult", "FileScanner"]

_KINDS = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


@dataclass(frozen=True)
class FileScanOptions:
    """``file_budget_seconds`` bounds the time spent on one file (trying passwords,
    decrypting keys, parsing PEM blocks), checked before each step; the iteration caps
    keep every step short, so one hostile file costs at most the budget plus one step."""

    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    follow_symlinks: bool = False
    passwords: tuple[bytes, ...] = ()
    max_kdf_iterations: int = MAX_KDF_ITERATIONS
    max_jceks_iterations: int = JCEKS_MAX_ITERATIONS
    file_budget_seconds: float = DEFAULT_FILE_BUDGET_SECONDS

    def __post_init__(self) -> None:
        if self.max_file_size < 1:
            raise BadTarget("max file size must be at least 1 byte")
        if not self.file_budget_seconds > 0:
            raise BadTarget("the time budget per file must be more than 0 seconds")

    @property
    def unlock(self) -> Unlock:
        return Unlock(self.passwords, self.max_kdf_iterations, self.max_jceks_iterations)


@dataclass
class FileScanResult:
    """Outcomes for every file that held (or claimed to hold) certificates or keys and for
    every entry that could not be examined; ``listed`` are the directories read completely
    (a location under one of them that was not seen again is gone)."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    examined: set[str] = field(default_factory=set)
    files_read: int = 0


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "special file"


def _reason(exc: OSError) -> tuple[FileStatus, str]:
    if exc.errno == errno.ELOOP:
        return FileStatus.SKIPPED, "symlink loop"
    if exc.errno == errno.ENOENT:
        return FileStatus.SKIPPED, "does not exist (or a dangling symlink)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return FileStatus.UNREADABLE, "permission denied"
    return FileStatus.UNREADABLE, exc.strerror or type(exc).__name__


class FileScanner:
    def __init__(self, options: FileScanOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self._unlock = options.unlock
        self._clock = clock

    def scan(self, paths: Iterable[Path], observer: ScanObserver | None = None) -> FileScanResult:
        """Walk ``paths`` in order, telling ``observer`` about each outcome."""
        watcher: ScanObserver = observer or NullObserver()
        watcher.on_start(None)
        result = FileScanResult()
        visited: set[tuple[int, int]] = set()
        for root in paths:
            for outcome in self._walk(Path(root).absolute(), result, visited):
                result.outcomes.append(outcome)
                watcher.on_outcome(outcome)
        return result

    def _walk(
        self, root: Path, result: FileScanResult, visited: set[tuple[int, int]]
    ) -> Iterator[FileOutcome]:
        stack: list[tuple[Path, bool]] = [(root, True)]
        while stack:
            path, explicit = stack.pop()
            text = str(path)
            result.examined.add(text)
            try:
                info = os.lstat(path)
                if stat.S_ISLNK(info.st_mode):
                    if not (explicit or self.options.follow_symlinks):
                        yield FileOutcome(text, FileStatus.SKIPPED, "symlink not followed")
                        continue
                    info = path.stat()
            except OSError as exc:
                status, reason = _reason(exc)
                yield FileOutcome(text, status, reason)
                continue
            if stat.S_ISDIR(info.st_mode):
                if (info.st_dev, info.st_ino) in visited:
                    yield FileOutcome(text, FileStatus.SKIPPED, "directory already visited (symlink loop)")
                    continue
                visited.add((info.st_dev, info.st_ino))
                try:
                    with os.scandir(path) as entries:
                        names = sorted(e.name for e in entries)
                except OSError as exc:
                    status, reason = _reason(exc)
                    yield FileOutcome(text, status, f"cannot list directory: {reason}")
                    continue
                result.listed.add(text)
                stack.extend((path / name, False) for name in reversed(names))
                continue
            if not stat.S_ISREG(info.st_mode):
                yield FileOutcome(text, FileStatus.SKIPPED, f"not a regular file ({_kind(info.st_mode)})")
                continue
            outcome = self._read(path, info.st_size, explicit)
            result.files_read += 1
            if outcome is not None:
                yield outcome

    def _read(self, path: Path, size: int, explicit: bool) -> FileOutcome | None:
        text = str(path)
        budget = Budget(self.options.file_budget_seconds, self._clock)
        cap = self.options.max_file_size
        if size > cap:
            return FileOutcome(text, FileStatus.SKIPPED, f"over the size cap ({size} bytes > {cap})")
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
        if not (explicit or self.options.follow_symlinks):
            flags |= os.O_NOFOLLOW  # swapped for a symlink since lstat: refuse it
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            status, reason = _reason(exc)
            return FileOutcome(text, status, reason)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):  # swapped since lstat
                return FileOutcome(text, FileStatus.SKIPPED, f"not a regular file ({_kind(info.st_mode)})")
            chunks: list[bytes] = []
            total = 0
            while total <= cap:
                chunk = os.read(fd, min(1 << 20, cap + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        except OSError as exc:
            status, reason = _reason(exc)
            return FileOutcome(text, status, reason)
        finally:
            os.close(fd)
        if total > cap:
            return FileOutcome(text, FileStatus.SKIPPED, f"over the size cap (more than {cap} bytes)")
        mode = stat.S_IMODE(info.st_mode)
        try:
            with lenient_parsing():
                material = read_material(b"".join(chunks), text, self._unlock, budget)
        except OverBudget as exc:
            return FileOutcome(text, FileStatus.SKIPPED, str(exc), mode=mode)
        if material is None:
            return None
        notes = tuple(material.notes)
        if material.malformed:
            return FileOutcome(text, FileStatus.MALFORMED, material.malformed, material.format, mode=mode)
        if material.skipped:
            return FileOutcome(text, FileStatus.SKIPPED, material.skipped, material.format, mode=mode)
        if material.locked and not material.certificates:
            return FileOutcome(
                text, FileStatus.LOCKED, material.locked, material.format, mode=mode, notes=notes
            )
        return FileOutcome(
            text,
            FileStatus.OK,
            None,
            material.format,
            tuple(material.certificates),
            tuple(material.keys),
            mode,
            notes,
        )

"""ACME nonces of one SQLite node, kept out of the database's write lock.

With nonces in ``acme_nonces`` every ACME request, a POST-as-GET poll included, wrote (a
DELETE and an INSERT), so on SQLite every request queued for the one write lock: about a
quarter of the serving workers' time at concurrency 8 was spent waiting in ``BEGIN
IMMEDIATE``. SQLite is embedded, so every process serving a SQLite database runs on one host
and can share a file instead: a poll then is a read-only transaction (it never waits for a
writer) and a write request holds the lock for its work only. PostgreSQL, where several
nodes share the database, keeps its nonces in the table.

A nonce is ``counter || expiry`` (two big-endian 64-bit integers: the issue number, the
expiry in milliseconds since the epoch) followed by the first 16 bytes of its HMAC-SHA256
under this run's key, base64url: 43 characters. The file ``<database>-acme-nonces`` (0600)
holds a magic, the key, the last counter issued and one bit per counter slot (1: used), in a
ring of :data:`WINDOW` slots, mapped shared by every process. Every issue and consume runs
under a lock of this object (its threads) and an exclusive ``flock`` on
``<database>-acme-nonces.lock`` (every process, and every other object in this one):

- issuing takes the next counter and clears its slot;
- consuming checks the MAC (a nonce this run did not issue fails), the expiry, that the
  counter is within the last :data:`WINDOW` issued (an older slot was reused: the nonce is
  refused, the client retries with the fresh one, RFC 8555 section 6.5), then sets the slot's
  bit; only the caller that found it clear succeeds. The bit is set outside any database
  transaction, so a request refused later has still used its nonce up.

A restart changes the key. Each process holding the file open keeps a shared ``flock`` on
it; one that opens it and can take that lock exclusively (under the ``.lock`` lock, so two
openers cannot interleave) is the only user, and makes a new key and a clear ring. So a
nonce from a server that was stopped fails its MAC (``badNonce``), while a worker that a
supervisor restarts, a second worker, or the CLI joins the running key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import hmac
import mmap
import os
import secrets
import struct
import threading
from pathlib import Path

from certfleet.store._database import Database

__all__ = ["WINDOW", "FileNonceStore", "node_nonce_store"]

# Nonces outstanding at once: a nonce more than this many issues old is refused. 2**20 slots
# is 128 KiB of bits, ten minutes of nonces at well over a thousand requests a second.
WINDOW = 1 << 20

_MAGIC = b"CFNONCE1"
_KEY = slice(8, 40)
_COUNTER = slice(40, 48)
_HEADER = 64
_BODY = struct.Struct(">QQ")  # counter, expiry in ms
_MAC_BYTES = 16
_TOKEN_CHARS = 43  # base64url of 32 bytes, unpadded


class FileNonceStore:
    """The nonces of every process on one SQLite database file (see the module doc)."""

    def __init__(self, path: Path, *, window: int = WINDOW) -> None:
        if window <= 0 or window % 8:
            raise ValueError("the nonce window is a positive multiple of 8")
        self._path = path
        self._lock_path = Path(f"{path}.lock")
        self._window = window
        self._size = _HEADER + window // 8
        self._threads = threading.Lock()
        self._pid = 0
        self._fd = -1
        self._lock_fd = -1
        self._map: mmap.mmap | None = None
        self._key = b""

    # -- the two operations ------------------------------------------------------------------

    def issue(self, expires_at: dt.datetime) -> str:
        expiry = _ms(expires_at)
        with self._locked() as ring:
            counter = int.from_bytes(ring[_COUNTER], "big") + 1
            ring[_COUNTER] = counter.to_bytes(8, "big")
            self._set_bit(ring, counter, used=False)
            key = self._key
        body = _BODY.pack(counter, expiry)
        return base64.urlsafe_b64encode(body + _mac(key, body)).decode().rstrip("=")

    def consume(self, value: str, now: dt.datetime) -> bool:
        """True for exactly one caller per nonce this run issued, before it expires."""
        if len(value) != _TOKEN_CHARS:
            return False
        try:
            raw = base64.b64decode(value + "=", altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            return False
        if len(raw) != _BODY.size + _MAC_BYTES:
            return False
        body, mac = raw[: _BODY.size], raw[_BODY.size :]
        counter, expiry = _BODY.unpack(body)
        if expiry <= _ms(now):
            return False
        with self._locked() as ring:
            if not hmac.compare_digest(mac, _mac(self._key, body)):
                return False
            last = int.from_bytes(ring[_COUNTER], "big")
            if not last - self._window < counter <= last or self._bit(ring, counter):
                return False
            self._set_bit(ring, counter, used=True)
            return True

    def close(self) -> None:
        with self._threads:
            if self._pid == os.getpid():
                if self._map is not None:
                    self._map.close()
                os.close(self._fd)  # releases this process's shared lock: see the module doc
                os.close(self._lock_fd)
            self._map, self._pid, self._fd, self._lock_fd = None, 0, -1, -1

    # -- the shared file ---------------------------------------------------------------------

    def _bit(self, ring: mmap.mmap, counter: int) -> bool:
        slot = counter % self._window
        return bool(ring[_HEADER + slot // 8] & (1 << (slot % 8)))

    def _set_bit(self, ring: mmap.mmap, counter: int, *, used: bool) -> None:
        slot = counter % self._window
        index = _HEADER + slot // 8
        mask = 1 << (slot % 8)
        ring[index] = ring[index] | mask if used else ring[index] & ~mask

    def _locked(self) -> _Held:
        return _Held(self)

    def _enter(self) -> mmap.mmap:
        self._threads.acquire()
        try:
            if self._map is None or self._pid != os.getpid():
                self._open()  # a forked child opens its own (a lock belongs to an open file)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        assert self._map is not None
        return self._map

    def _exit(self) -> None:
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _open(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        lock_fd = os.open(self._lock_path, flags, 0o600)
        fd = -1
        try:
            fd = os.open(self._path, flags, 0o600)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)  # no other opener between the test and the key
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    alone = True
                except BlockingIOError:
                    alone = False
                if not alone and os.fstat(fd).st_size != self._size:
                    # Shrinking a file others have mapped would crash them (SIGBUS).
                    raise OSError(f"{self._path} is in use with another nonce window")
                if alone:
                    os.ftruncate(fd, 0)  # a new run: a new key and a clear ring
                    os.ftruncate(fd, self._size)
                    os.pwrite(fd, _MAGIC + secrets.token_bytes(32) + bytes(8), 0)
                fcntl.flock(fd, fcntl.LOCK_SH)  # held while this process uses the file
                ring = mmap.mmap(fd, self._size)
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            os.close(lock_fd)
            raise
        if ring[: len(_MAGIC)] != _MAGIC:
            ring.close()
            os.close(fd)
            os.close(lock_fd)
            raise OSError(f"{self._path} is not a nonce file")
        # Another run's descriptors (inherited over a fork) are left to their owner.
        self._map, self._fd, self._lock_fd, self._pid = ring, fd, lock_fd, os.getpid()
        self._key = bytes(ring[_KEY])


class _Held:
    def __init__(self, store: FileNonceStore) -> None:
        self._store = store

    def __enter__(self) -> mmap.mmap:
        return self._store._enter()

    def __exit__(self, *_exc: object) -> None:
        self._store._exit()


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def node_nonce_store(database: Database) -> FileNonceStore | None:
    """The node store for a SQLite database file (``<database>-acme-nonces``, beside its
    ``-wal`` and ``-writer.lock``); ``None`` (nonces in the database) for PostgreSQL, where
    several nodes share them, and for an in-memory SQLite database."""
    if database.dialect != "sqlite":
        return None
    name = database.engine.url.database
    if not name or name == ":memory:":
        return None
    return FileNonceStore(Path(f"{name}-acme-nonces"))

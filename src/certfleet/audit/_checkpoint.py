"""Signed checkpoints: the chain's head anchored outside the database.

The hash chain proves that the rows agree with each other; someone who can write to the
database can still delete the whole log and start a fresh chain, or recompute every hash
from entry 1. A checkpoint is the head (seq, hash) at a moment, signed with an Ed25519 key
the database does not hold and written somewhere the database's attacker cannot rewrite (a
file copied off the machine, a syslog server). ``verify_checkpoints`` then checks that every
checkpointed (seq, hash) is still in the chain.

A checkpoint is one JSON line::

    {"at":"2026-01-02T03:04:05.000000Z","hash":"<64 hex>","key_id":"<16 hex>","seq":42,
     "sig":"<base64 Ed25519 signature>","v":1}

The signature covers the same object without ``sig``, as canonical JSON (sorted keys, no
spaces, ASCII), so any edit of seq, hash, time or key id breaks it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from certfleet.audit._chain import AuditEntry, ChainVerdict, verify_chain
from certfleet.errors import InvalidInput

__all__ = [
    "Checkpoint",
    "CheckpointVerdict",
    "checkpoint_key_id",
    "parse_public_key",
    "public_key_text",
    "sign_checkpoint",
    "verify_checkpoints",
]

_VERSION = 1


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def checkpoint_key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """The public key as base64 of its 32 raw bytes: what ``audit verify --public-key`` takes."""
    return base64.b64encode(_raw(public_key)).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"public key {text!r} is not base64") from exc
    if len(raw) != 32:
        raise InvalidInput(f"public key {text!r} is not an Ed25519 key (32 bytes)")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: dt.datetime
    key_id: str
    signature: bytes

    def _signed_fields(self) -> dict[str, object]:
        return {
            "v": _VERSION,
            "seq": self.seq,
            "hash": self.hash,
            "at": _timestamp(self.at),
            "key_id": self.key_id,
        }

    def signed_bytes(self) -> bytes:
        return json.dumps(self._signed_fields(), sort_keys=True, separators=(",", ":")).encode()

    def to_line(self) -> str:
        fields = {**self._signed_fields(), "sig": base64.b64encode(self.signature).decode()}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, line: str) -> Checkpoint:
        """A checkpoint line; ValueError names what is wrong with it."""
        try:
            fields = json.loads(line)
        except ValueError as exc:
            raise ValueError("not JSON") from exc
        if not isinstance(fields, dict) or fields.get("v") != _VERSION:
            raise ValueError(f"not a version {_VERSION} checkpoint")
        seq, digest, at, key_id, sig = (fields.get(k) for k in ("seq", "hash", "at", "key_id", "sig"))
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("seq is not an entry number")
        if not isinstance(digest, str) or len(digest) != 64:
            raise ValueError("hash is not a SHA-256 hex digest")
        if not isinstance(at, str) or not isinstance(key_id, str) or not isinstance(sig, str):
            raise ValueError("at, key_id and sig must be strings")
        try:
            when = dt.datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
            signature = base64.b64decode(sig, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise ValueError("at or sig is malformed") from exc
        checkpoint = cls(seq, digest, when, key_id, signature)
        if checkpoint.to_line() != json.dumps(fields, sort_keys=True, separators=(",", ":")):
            raise ValueError("unexpected fields")
        return checkpoint


def sign_checkpoint(key: Ed25519PrivateKey, head: tuple[int, str], at: dt.datetime) -> Checkpoint:
    seq, digest = head
    unsigned = Checkpoint(seq, digest, at, checkpoint_key_id(key.public_key()), b"")
    return Checkpoint(seq, digest, at, unsigned.key_id, key.sign(unsigned.signed_bytes()))


@dataclass(frozen=True)
class CheckpointVerdict:
    """``chain`` is the plain chain check; ``reason`` says why the log does not match its
    checkpoints, with ``line`` (1-based) when the checkpoint file itself is at fault."""

    chain: ChainVerdict
    checkpoints: int
    reason: str | None = None
    line: int | None = None

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.reason is None


def _read(
    lines: Iterable[str], public_key: Ed25519PublicKey
) -> tuple[list[tuple[int, Checkpoint]], str | None, int | None]:
    trusted = checkpoint_key_id(public_key)
    checkpoints: list[tuple[int, Checkpoint]] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            checkpoint = Checkpoint.parse(text)
        except ValueError as exc:
            return checkpoints, f"line {number} is not a checkpoint ({exc}): the file was altered", number
        if checkpoint.key_id != trusted:
            return (
                checkpoints,
                (f"line {number} is signed by key {checkpoint.key_id}, not the checkpoint key {trusted}"),
                number,
            )
        try:
            public_key.verify(checkpoint.signature, checkpoint.signed_bytes())
        except InvalidSignature:
            return (
                checkpoints,
                (f"line {number} has a bad signature: the checkpoint (entry {checkpoint.seq}) was altered"),
                number,
            )
        checkpoints.append((number, checkpoint))
    return checkpoints, None, None


def verify_checkpoints(
    entries: Iterable[AuditEntry],
    head: tuple[int, str],
    lines: Iterable[str],
    public_key: Ed25519PublicKey,
) -> CheckpointVerdict:
    """Check each line's signature, the chain, and that every checkpointed (seq, hash) is
    still the chain's entry at that seq. A log that is shorter than a checkpoint was wiped
    or truncated; one whose entry differs from a checkpoint was rewritten or replaced (a
    consistent re-hash from entry 1 passes the chain check but not this)."""
    checkpoints, problem, line = _read(lines, public_key)
    if problem is not None:
        return CheckpointVerdict(ChainVerdict(True, 0), len(checkpoints), problem, line)
    if not checkpoints:
        raise InvalidInput("the checkpoint file holds no checkpoint")
    wanted = {cp.seq for _, cp in checkpoints}
    seen: dict[int, str] = {}

    def capture(source: Iterable[AuditEntry]) -> Iterator[AuditEntry]:
        for entry in source:
            if entry.seq in wanted:
                seen[entry.seq] = entry.hash
            yield entry

    chain = verify_chain(capture(entries), head)
    if not chain.ok:
        return CheckpointVerdict(chain, len(checkpoints))
    seen[0] = "0" * 64  # the genesis: a checkpoint of the empty log
    last = chain.entries
    for _, cp in checkpoints:
        signed = f"checkpoint of entry {cp.seq} signed {_timestamp(cp.at)}"
        if cp.seq > last:
            return CheckpointVerdict(
                chain,
                len(checkpoints),
                f"the log ends at entry {last}, before the {signed} (the log was wiped or truncated)",
            )
        if seen.get(cp.seq) != cp.hash:
            return CheckpointVerdict(
                chain,
                len(checkpoints),
                f"entry {cp.seq} differs from the {signed} (the log was rewritten or replaced)",
            )
    return CheckpointVerdict(chain, len(checkpoints))

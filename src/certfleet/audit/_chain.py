"""A hash-chained, append-only audit log.

Each entry's hash is SHA-256 over the previous entry's hash and a canonical JSON encoding of
its own fields, so editing, deleting or reordering any row breaks every hash after it. A
separate head record (last sequence number and hash), updated in the same transaction as
each append, makes the removal of the newest entries detectable too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from certfleet.clock import Clock

__all__ = [
    "GENESIS_HASH",
    "AuditDraft",
    "AuditEntry",
    "AuditLog",
    "AuditRepository",
    "ChainVerdict",
    "entry_hash",
    "extend_chain",
    "verify_chain",
]

GENESIS_HASH = "0" * 64


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    prev_hash: str,
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any],
) -> str:
    body = json.dumps(
        {
            "seq": seq,
            "at": _timestamp(at),
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": _timestamp(self.at),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class AuditDraft:
    """An entry before it has a place in the chain (its seq and hashes come from the head)."""

    at: dt.datetime
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any]


def extend_chain(head: tuple[int, str], drafts: Iterable[AuditDraft]) -> list[AuditEntry]:
    """Chain ``drafts`` after ``head`` (last seq, last hash), in order. The caller holds the
    head locked in the transaction that appends them and moves the head to the last one, so
    several entries written by one transaction (a group commit) link like single appends."""
    last_seq, last_hash = head
    entries = []
    for draft in drafts:
        last_seq += 1
        payload = dict(draft.details)
        digest = entry_hash(last_hash, last_seq, draft.at, draft.actor, draft.action, draft.subject, payload)
        entries.append(
            AuditEntry(
                last_seq, draft.at, draft.actor, draft.action, draft.subject, payload, last_hash, digest
            )
        )
        last_hash = digest
    return entries


class AuditRepository(Protocol):
    def lock_head(self) -> tuple[int, str]:
        """Return (last seq, last hash), locking the head until the transaction ends."""
        ...

    def append(self, entry: AuditEntry) -> None:
        """Insert ``entry`` and move the head to it."""
        ...

    def head(self) -> tuple[int, str]: ...

    def entries(self, *, after_seq: int = 0) -> Iterable[AuditEntry]:
        """Every entry in storage order (by seq); with ``after_seq`` only those after it."""
        ...


class AuditLog:
    """Appends entries inside the caller's transaction."""

    def __init__(self, repository: AuditRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    def record(
        self, actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        draft = AuditDraft(self._clock.now(), actor, action, subject, dict(details or {}))
        (entry,) = extend_chain(self._repository.lock_head(), [draft])
        self._repository.append(entry)
        return entry


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None
    problems: tuple[str, ...] = field(default=())


def verify_chain(entries: Iterable[AuditEntry], head: tuple[int, str]) -> ChainVerdict:
    """Check every link; report the first entry that is missing, out of place or altered.

    A row edited so badly that storage cannot even decode it (a date that is no date)
    surfaces as a ``ValueError`` from ``entries``: that entry is reported as unreadable.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    iterator = iter(entries)
    while True:
        try:
            entry = next(iterator)
        except StopIteration:
            break
        except ValueError as exc:
            return ChainVerdict(
                False, count, expected_seq, f"entry {expected_seq} cannot be read (edited in storage?): {exc}"
            )
        count += 1
        if entry.seq != expected_seq:
            return ChainVerdict(
                False,
                count,
                expected_seq,
                f"entry {expected_seq} is missing: entry {entry.seq} follows entry {expected_seq - 1} "
                "(an entry was deleted, renumbered or reordered)",
            )
        if entry.prev_hash != prev_hash:
            return ChainVerdict(
                False, count, entry.seq, f"entry {entry.seq} does not link to the entry before it"
            )
        recomputed = entry_hash(
            entry.prev_hash, entry.seq, entry.at, entry.actor, entry.action, entry.subject, entry.details
        )
        if recomputed != entry.hash:
            return ChainVerdict(False, count, entry.seq, f"entry {entry.seq} was altered (hash mismatch)")
        prev_hash = entry.hash
        expected_seq += 1
    head_seq, head_hash = head
    if head_seq != expected_seq - 1 or head_hash != prev_hash:
        bad = expected_seq if head_seq >= expected_seq else head_seq
        return ChainVerdict(
            False,
            count,
            bad,
            f"the log ends at entry {expected_seq - 1} but its head records entry "
            f"{head_seq} (entries were removed from the end or the head was altered)",
        )
    return ChainVerdict(True, count)

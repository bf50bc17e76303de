"""The hash chain itself, over an in-memory repository: any edit, deletion or reordering
is found, and the first bad entry is named."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterator

import pytest

from certfleet.audit import GENESIS_HASH, AuditEntry, AuditLog, entry_hash, verify_chain
from tests.conftest import FakeClock


class MemoryAuditRepository:
    """A hand-written fake of the storage interface."""

    def __init__(self) -> None:
        self.rows: list[AuditEntry] = []
        self.head_row = (0, GENESIS_HASH)

    def lock_head(self) -> tuple[int, str]:
        return self.head_row

    def append(self, entry: AuditEntry) -> None:
        self.rows.append(entry)
        self.head_row = (entry.seq, entry.hash)

    def head(self) -> tuple[int, str]:
        return self.head_row

    def entries(self) -> Iterator[AuditEntry]:
        yield from sorted(self.rows, key=lambda e: e.seq)


@pytest.fixture
def log() -> tuple[AuditLog, MemoryAuditRepository, FakeClock]:
    repo = MemoryAuditRepository()
    clock = FakeClock(dt.datetime(2026, 5, 1, 9, 0, 0, 123456, tzinfo=dt.UTC))
    audit = AuditLog(repo, clock)
    for i in range(5):
        audit.record(f"actor{i}", "certificate.issued", f"serial{i}", {"n": i, "sans": ["a.example.com"]})
        clock.advance(dt.timedelta(seconds=1))
    return audit, repo, clock


def test_entries_link_from_genesis(log: tuple[AuditLog, MemoryAuditRepository, FakeClock]) -> None:
    _, repo, _ = log
    assert [e.seq for e in repo.rows] == [1, 2, 3, 4, 5]
    assert repo.rows[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(repo.rows):
        assert after.prev_hash == before.hash
    first = repo.rows[0]
    assert first.hash == entry_hash(
        GENESIS_HASH, 1, first.at, first.actor, first.action, first.subject, first.details
    )
    verdict = verify_chain(repo.entries(), repo.head())
    assert (verdict.ok, verdict.entries, verdict.first_bad_seq) == (True, 5, None)


def test_empty_log_verifies() -> None:
    repo = MemoryAuditRepository()
    assert verify_chain(repo.entries(), repo.head()).ok


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("at", dt.datetime(2026, 5, 1, 9, 0, 2, 123457, tzinfo=dt.UTC)),  # one microsecond later
        ("actor", "mallory"),
        ("action", "certificate.refused"),
        ("subject", "serial-forged"),
        ("details", {"n": 2, "sans": ["evil.example.com"]}),
        ("hash", "f" * 64),
    ],
)
def test_an_edited_field_is_named(
    log: tuple[AuditLog, MemoryAuditRepository, FakeClock], field: str, value: object
) -> None:
    _, repo, _ = log
    repo.rows[2] = dataclasses.replace(repo.rows[2], **{field: value})
    verdict = verify_chain(repo.entries(), repo.head())
    assert not verdict.ok
    assert verdict.first_bad_seq == 3
    assert "entry 3" in (verdict.reason or "")


def test_an_edited_link_is_named(log: tuple[AuditLog, MemoryAuditRepository, FakeClock]) -> None:
    _, repo, _ = log
    repo.rows[1] = dataclasses.replace(repo.rows[1], prev_hash="0" * 64)
    verdict = verify_chain(repo.entries(), repo.head())
    assert (verdict.ok, verdict.first_bad_seq) == (False, 2)
    assert "does not link" in (verdict.reason or "")


def test_a_recomputed_forgery_breaks_the_next_link(
    log: tuple[AuditLog, MemoryAuditRepository, FakeClock],
) -> None:
    """Editing a row and fixing up its own hash is caught by the entry after it."""
    _, repo, _ = log
    old = repo.rows[1]
    forged_hash = entry_hash(old.prev_hash, old.seq, old.at, "mallory", old.action, old.subject, old.details)
    repo.rows[1] = dataclasses.replace(old, actor="mallory", hash=forged_hash)
    verdict = verify_chain(repo.entries(), repo.head())
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)


def test_a_deleted_middle_entry_is_named(log: tuple[AuditLog, MemoryAuditRepository, FakeClock]) -> None:
    _, repo, _ = log
    del repo.rows[2]
    verdict = verify_chain(repo.entries(), repo.head())
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)
    assert "entry 3 is missing" in (verdict.reason or "")


def test_a_deleted_last_entry_is_named(log: tuple[AuditLog, MemoryAuditRepository, FakeClock]) -> None:
    _, repo, _ = log
    del repo.rows[-1]
    verdict = verify_chain(repo.entries(), repo.head())
    assert (verdict.ok, verdict.first_bad_seq) == (False, 5)
    assert "ends at entry 4 but its head records entry 5" in (verdict.reason or "")


def test_swapped_sequence_numbers_are_named(log: tuple[AuditLog, MemoryAuditRepository, FakeClock]) -> None:
    _, repo, _ = log
    a, b = repo.rows[1], repo.rows[3]
    repo.rows[1], repo.rows[3] = dataclasses.replace(a, seq=b.seq), dataclasses.replace(b, seq=a.seq)
    verdict = verify_chain(repo.entries(), repo.head())
    assert (verdict.ok, verdict.first_bad_seq) == (False, 2)


def test_an_unreadable_entry_is_reported_not_raised(
    log: tuple[AuditLog, MemoryAuditRepository, FakeClock],
) -> None:
    _, repo, _ = log

    def entries() -> Iterator[AuditEntry]:
        yield from repo.rows[:3]
        raise ValueError("Invalid isoformat string: 'yesterday'")

    verdict = verify_chain(entries(), repo.head())
    assert (verdict.ok, verdict.first_bad_seq) == (False, 4)
    assert "entry 4 cannot be read" in (verdict.reason or "")


def test_hash_covers_microseconds_and_canonical_details() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    base = entry_hash(GENESIS_HASH, 1, at, "a", "x", "s", {"b": 1, "a": 2})
    assert base == entry_hash(GENESIS_HASH, 1, at, "a", "x", "s", {"a": 2, "b": 1})  # key order irrelevant
    assert base != entry_hash(
        GENESIS_HASH, 1, at + dt.timedelta(microseconds=1), "a", "x", "s", {"b": 1, "a": 2}
    )
    assert base != entry_hash("1" * 64, 1, at, "a", "x", "s", {"b": 1, "a": 2})

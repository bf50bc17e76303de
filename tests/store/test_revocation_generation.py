"""The PostgreSQL generation read shared by a process's threads: a caller is answered only by
a read that started after it asked (never by one already on the wire), and callers that
arrive together share one query."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from certfleet.store._revocation_generation import _PostgresRead

WAIT_SECONDS = 30  # a safety net for a broken implementation, never a synchronisation


class _Waits(threading.Condition):
    """A condition that counts the threads waiting on it, so the test knows when they do."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Semaphore(0)

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.release()
        return super().wait(timeout)


class _Scripted(_PostgresRead):
    """The first query blocks until released; each query returns the database's value at the
    moment the query runs."""

    def __init__(self) -> None:
        super().__init__("")
        self._cond = _Waits()
        self.in_flight = threading.Event()
        self.release = threading.Event()
        self.database_value = 1
        self.queries = 0

    def _query(self) -> int:
        self.queries += 1
        value = self.database_value  # the snapshot is taken as the query starts
        if self.queries == 1:
            self.in_flight.set()
            assert self.release.wait(WAIT_SECONDS)
        return value


def _reader_thread(reader: _PostgresRead, results: dict[str, int], name: str) -> threading.Thread:
    def run() -> None:
        results[name] = reader.read()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_callers_arriving_during_a_read_wait_for_the_next_one_and_share_it() -> None:
    reader = _Scripted()
    results: dict[str, int] = {}
    first = _reader_thread(reader, results, "first")
    assert reader.in_flight.wait(WAIT_SECONDS)
    # A revocation commits while the first read is on the wire; then two requests arrive.
    reader.database_value = 2
    later = [_reader_thread(reader, results, name) for name in ("second", "third")]
    waits: Any = reader._cond
    for _ in later:
        assert waits.waiting.acquire(timeout=WAIT_SECONDS)  # both are waiting, not answered
    reader.release.set()
    for thread in (first, *later):
        thread.join(WAIT_SECONDS)
    # The first began before the commit; the others never get its value, and share one read.
    assert results == {"first": 1, "second": 2, "third": 2}
    assert reader.queries == 2


def test_a_failed_read_leaves_the_next_caller_to_read_again() -> None:
    class Failing(_PostgresRead):
        def __init__(self) -> None:
            super().__init__("")
            self.calls = 0

        def _query(self) -> int:
            self.calls += 1
            if self.calls == 1:
                raise OSError("connection lost")
            return 7

    reader = Failing()
    with pytest.raises(OSError, match="connection lost"):
        reader.read()
    assert reader.read() == 7 and reader.calls == 2

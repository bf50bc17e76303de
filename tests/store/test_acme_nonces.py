"""The node nonce store of a SQLite database: a nonce is accepted once by whichever worker
(process, thread, or second store object) sees it first, refused after a restart, after its
expiry, when forged, and once it fell out of the window of outstanding nonces."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from certfleet.store._acme_nonces import FileNonceStore

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(minutes=5)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "certfleet.db-acme-nonces"


@pytest.fixture
def stores(path: Path) -> Iterator[list[FileNonceStore]]:
    """Two workers' stores on one file."""
    opened = [FileNonceStore(path), FileNonceStore(path)]
    yield opened
    for store in opened:
        store.close()


def test_a_nonce_from_one_worker_is_accepted_once_by_another(stores: list[FileNonceStore]) -> None:
    first, second = stores
    nonce = first.issue(LATER)
    assert second.consume(nonce, NOW)
    assert not second.consume(nonce, NOW)
    assert not first.consume(nonce, NOW)


def test_threads_racing_for_the_same_nonces_let_exactly_one_through(stores: list[FileNonceStore]) -> None:
    nonces = [stores[0].issue(LATER) for _ in range(50)]
    barrier = threading.Barrier(8)

    def race(index: int) -> list[bool]:
        store = stores[index % 2]
        barrier.wait()
        return [store.consume(nonce, NOW) for nonce in nonces]

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(race, range(8)))
    assert [sum(won[i] for won in outcomes) for i in range(len(nonces))] == [1] * len(nonces)


def _consume_all(path: str, nonces: list[str], barrier: Any, results: Any) -> None:
    store = FileNonceStore(Path(path))
    try:
        barrier.wait()
        results.put([store.consume(nonce, NOW) for nonce in nonces])
    finally:
        store.close()


def test_processes_racing_for_the_same_nonces_let_exactly_one_through(
    stores: list[FileNonceStore], path: Path
) -> None:
    # Given nonces issued by a running worker (which keeps the run's key alive)
    nonces = [stores[0].issue(LATER) for _ in range(300)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    # When two other processes try to use every one of them at the same moment
    workers = [ctx.Process(target=_consume_all, args=(str(path), nonces, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60), results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    # Then each nonce was accepted by exactly one of them, and by nobody afterwards
    assert [a + b for a, b in zip(*outcomes, strict=True)] == [1] * len(nonces)
    assert not any(stores[1].consume(nonce, NOW) for nonce in nonces)


def test_a_forked_child_uses_the_running_key_and_the_use_is_shared(stores: list[FileNonceStore]) -> None:
    first, _ = stores
    nonce = first.issue(LATER)
    child = os.fork()
    if child == 0:  # the child: its store object came over the fork, its descriptors did not
        os._exit(0 if first.consume(nonce, NOW) and not first.consume(nonce, NOW) else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not first.consume(nonce, NOW)


def test_a_nonce_from_a_stopped_server_is_refused_by_the_next(path: Path) -> None:
    # Given a nonce issued by a server whose every process has stopped
    old = FileNonceStore(path)
    nonce = old.issue(LATER)
    old.close()
    # When the next server starts on the same database
    new = FileNonceStore(path)
    try:
        # Then the nonce fails (a new run has a new key), and the new server's own work
        assert not new.consume(nonce, NOW)
        assert new.consume(new.issue(LATER), NOW)
    finally:
        new.close()


def test_a_worker_restarted_while_others_run_keeps_their_nonces(path: Path) -> None:
    running, crashed = FileNonceStore(path), FileNonceStore(path)
    running.issue(LATER)  # a worker that has served holds the file (it opens at first use)
    nonce = crashed.issue(LATER)
    crashed.close()
    restarted = FileNonceStore(path)
    try:
        assert restarted.consume(nonce, NOW)
    finally:
        running.close()
        restarted.close()


def test_expired_forged_and_foreign_nonces_are_refused(stores: list[FileNonceStore]) -> None:
    store = stores[0]
    expired = store.issue(NOW)
    assert not store.consume(expired, NOW)
    nonce = store.issue(LATER)
    forged = nonce[:-2] + ("AA" if nonce[-2:] != "AA" else "BB")
    for value in (forged, "", "x" * 43, "!" * 43, nonce + "A", nonce[:-1]):
        assert not store.consume(value, NOW), value
    # A refused value did not use the real nonce up
    assert store.consume(nonce, NOW)


def test_a_nonce_older_than_the_window_is_refused(path: Path) -> None:
    store = FileNonceStore(path, window=8)
    try:
        oldest = store.issue(LATER)
        recent = [store.issue(LATER) for _ in range(7)]
        assert store.consume(recent[0], NOW)
        store.issue(LATER)  # the ninth reuses the oldest's slot
        assert not store.consume(oldest, NOW)
        assert all(store.consume(nonce, NOW) for nonce in recent[1:])
    finally:
        store.close()


def test_the_nonce_file_is_private(stores: list[FileNonceStore], path: Path) -> None:
    stores[0].issue(LATER)
    for file in (path, Path(f"{path}.lock")):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600

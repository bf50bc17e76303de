"""Another process holds ``BEGIN EXCLUSIVE`` on a serving node's SQLite database (a backup
tool, an operator's sqlite3 shell) while clients issue over REST. A short lock is waited out
and every request then succeeds; a lock held past the bounded wait gets 503 problem+json
saying the database is unavailable (no traceback, no 500), and issuance recovers without a
restart once the lock goes. Nothing is half-written: every certificate a client received is
in the inventory with its serial marked issued, and the audit chain verifies."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.faults_support import IssuanceLoad, TestServer, ledger_state, prepare_data_dir
from tests.integration.test_serve import certfleet

pytestmark = pytest.mark.integration

# The bounded wait: SQLite's busy_timeout and the write gate's (store/_database.py), set
# shorter than its 30 s default through [server] sqlite_lock_wait_seconds; the short lock
# below (2 s) stays well inside it.
BOUNDED_WAIT_SECONDS = 8
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@contextmanager
def exclusive_lock(database: Path) -> Iterator[None]:
    """A second process holding BEGIN EXCLUSIVE on ``database`` until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0


def _wait_until(condition: object, what: str, seconds: float = 60 + 4 * BOUNDED_WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)  # polling what the clients received


def test_a_database_locked_by_another_process_gives_clean_errors_then_recovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    token, url = prepare_data_dir(data_dir, None)
    with (data_dir / "config.toml").open("a") as config:
        config.write(f"[server]\nsqlite_lock_wait_seconds = {BOUNDED_WAIT_SECONDS}\n")
    server = TestServer(data_dir)
    server.start()
    load = IssuanceLoad(server.https, token, threads=3)
    try:
        load.start()
        _wait_until(lambda: len(load.issued) >= 3, "no issuance before the lock")
        # Given a lock shorter than the bounded wait: the requests wait, then succeed
        before = len(load.issued)
        with exclusive_lock(data_dir / "certfleet.db"):
            time.sleep(2)  # the outage's length, not a synchronisation
        _wait_until(lambda: len(load.issued) >= before + 3, "no issuance after a short lock")
        assert not load.failures, load.failures[:3]
        # When the lock is held past the bounded wait
        with exclusive_lock(data_dir / "certfleet.db"):
            _wait_until(lambda: bool(load.failures), "no request failed while the database was locked")
            during = len(load.issued)
        # Then the requests failed cleanly: 503 problem+json naming the cause
        for status, content_type, body in load.failures:
            assert status == 503, body
            assert content_type == "application/problem+json"
            assert "the database is unavailable" in body and "locked" in body
        # And issuance recovers without a restart
        _wait_until(lambda: len(load.issued) >= during + 3, "no issuance after the lock was released")
    finally:
        load.stop()
        server.ensure_stopped()
    assert "Traceback" not in server.stderr, server.stderr[-3000:]
    state = ledger_state(url)
    assert set(load.issued) <= set(state.certificates)
    assert all(state.serial_states[s] == "issued" for s in state.certificates)
    assert certfleet("audit", "verify", "--data-dir", str(data_dir)).returncode == 0

"""PostgreSQL restarted (a fast shutdown dropping every connection, then a start) while a
``certfleet serve`` issues under REST load. The cluster is the test's own, never the shared
test database. While it is down, requests fail cleanly (503 problem+json, no traceback in the
server's logs); once it is back, the same server process issues again without a restart;
nothing is lost (every certificate a client received is in the inventory, every inventory
certificate's serial is marked issued) and the audit chain verifies."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.faults_support import IssuanceLoad, TestServer, ledger_state, prepare_data_dir
from tests.integration.pg_cluster import PgCluster
from tests.integration.test_serve import certfleet

pytestmark = pytest.mark.integration


def _wait_until(condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)  # polling what the clients received


def test_postgresql_restarted_under_load_gives_clean_errors_and_loses_nothing(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    token, url = prepare_data_dir(data_dir, pg_cluster.url)
    server = TestServer(data_dir)
    server.start()
    load = IssuanceLoad(server.https, token, threads=4)
    try:
        load.start()
        _wait_until(lambda: len(load.issued) >= 5, "no issuance before the restart")
        # When PostgreSQL restarts under load
        pg_cluster.restart()
        after_restart = len(load.issued)
        # Then the same server process issues again, without a restart of its own
        _wait_until(lambda: len(load.issued) >= after_restart + 5, "no issuance after the restart")
    finally:
        load.stop()
        alive = server.process is not None and server.process.poll() is None
        server.ensure_stopped()
    assert alive, "the server died with its database"
    # Requests the outage reached failed cleanly, never with a 500
    for status, content_type, body in load.failures:
        assert status == 503, body
        assert content_type == "application/problem+json"
        assert "the database is unavailable" in body
    assert "Traceback" not in server.stderr, server.stderr[-3000:]
    # Nothing lost, nothing half-written
    state = ledger_state(url)
    assert set(load.issued) <= set(state.certificates)
    assert all(state.serial_states[s] == "issued" for s in state.certificates)
    assert len(load.issued) == len(set(load.issued))
    assert certfleet("audit", "verify", "--data-dir", str(data_dir)).returncode == 0

"""A real ``certfleet serve`` under REST issuance load is killed with SIGKILL at each step of
issuance (test-only fault points, certfleet/faults.py), then restarted on the same data, on
SQLite and on PostgreSQL. Nothing is lost: every certificate the clients received is in the
inventory, every serial the CA could have signed without recording it is still reserved and
revocable (revoked by serial through the API, then seen on the CRL), no serial is used twice
across the runs, and the audit chain verifies."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.integration.faults_support import (
    IssuanceLoad,
    TestServer,
    fresh_postgres_database,
    ledger_state,
    prepare_data_dir,
)
from tests.integration.test_serve import certfleet

pytestmark = pytest.mark.integration

# Each run kills the server at one point, on the 4th time a request reaches it: by then the
# other clients' requests are in flight at every step.
KILL_POINTS = (
    "issuance.after_serial_reserved",
    "issuance.after_signing",
    "issuance.before_final_write",
    "issuance.before_commit",
)
FIRE_AT = 4
TESTING = {"CERTFLEET_TESTING": "1"}


def test_a_server_on_sqlite_killed_at_each_issuance_step_loses_no_certificate(tmp_path: Path) -> None:
    _kill_at(KILL_POINTS, tmp_path, None)


def test_a_server_on_postgresql_killed_while_signed_and_unrecorded_loses_no_certificate(
    tmp_path: Path,
) -> None:
    # The two steps where a signed certificate exists that the database does not hold (the
    # other two run on SQLite above; the file stays within its time budget).
    with fresh_postgres_database() as url:
        _kill_at(("issuance.after_signing", "issuance.before_commit"), tmp_path, url)


def _kill_at(points: tuple[str, ...], tmp_path: Path, database_url: str | None) -> None:
    data_dir = tmp_path / "data"
    token, url = prepare_data_dir(data_dir, database_url)
    server = TestServer(data_dir)
    received: list[str] = []  # every serial a client was given, across all runs
    unrecorded: set[str] = set()
    try:
        for point in points:
            # Given a server armed to kill itself at this step, under load
            server.env = {**TESTING, "CERTFLEET_TEST_FAULTS": f"{point}=kill@{FIRE_AT}"}
            server.start()
            load = IssuanceLoad(server.https, token, threads=4)
            load.start()
            # When the fault fires (a real SIGKILL: the process dies with signal 9)
            assert server.process is not None
            returncode = server.process.wait(timeout=60)
            load.stop()
            assert returncode == -signal.SIGKILL, f"{point}: {server.stderr}"
            assert not load.failures, f"{point}: {load.failures[:3]}"
            received += load.issued
            # Then every certificate given out is recorded, and what was in flight is reserved
            state = ledger_state(url)
            assert set(load.issued) <= set(state.certificates), point
            # (the serials table also holds the CA certificates', which the inventory does not)
            recorded_serials = {s for s, st in state.serial_states.items() if st == "issued"}
            assert set(state.certificates) <= recorded_serials, point
            newly = state.reserved_only - unrecorded
            assert newly, f"{point}: the request the kill interrupted left no reserved serial"
            unrecorded |= state.reserved_only
        # After a restart without faults, issuance goes on
        server.env = {}
        server.start()
        load = IssuanceLoad(server.https, token, threads=2)
        load.start()
        _wait_for_issued(load, 4)
        load.stop()
        assert not load.failures, load.failures[:3]
        received += load.issued
        # No serial was ever handed out twice, nor given to a new certificate after a crash
        assert not [s for s, n in Counter(received).items() if n > 1]
        state = ledger_state(url)
        assert set(received) <= set(state.certificates)
        assert not unrecorded & set(state.certificates)
        assert unrecorded == state.reserved_only
        # Every serial signed but never recorded is revocable by serial, and on the CRL
        crl_urls = _revoke_all(server, token, unrecorded)
        on_crl = set()
        for crl_url in crl_urls:
            crl = x509.load_der_x509_crl(httpx.get(crl_url, timeout=30).content)
            on_crl |= {format(entry.serial_number, "x") for entry in crl}
        assert {s.lower().lstrip("0") for s in unrecorded} <= on_crl
    finally:
        server.ensure_stopped()
    # And the audit chain, written by the killed processes, verifies end to end
    verified = certfleet("audit", "verify", "--data-dir", str(data_dir))
    assert verified.returncode == 0


def _wait_for_issued(load: IssuanceLoad, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(load.issued) < count and not load.failures and time.monotonic() < deadline:
        time.sleep(0.05)  # polling what the clients received, not standing in for an event


def _revoke_all(server: TestServer, token: str, serials: set[str]) -> set[str]:
    crls = set()
    with httpx.Client(verify=False, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for serial in sorted(serials):
            response = client.post(
                f"{server.https}/api/v1/revocations", json={"serial": serial, "reason": "superseded"}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["certificate"] is None  # never recorded: revoked on its reserved serial
            crls.add(f"{server.http}/crl/{body['issuer_ca_id']}.crl")
    return crls

"""SPIFFE end to end: a real ``certfleet serve`` with a trust domain and registration
entries, a real enrolled ``certfleet agent run`` serving the Workload API, and py-spiffe
workloads in their own processes under different uids (root is needed: setpriv, and the
agent reading other users' /proc/PID/exe).

The X509-SVID rotation is real: the web entry has the shortest TTL the server allows (5
minutes), so the agent rotates it after 2.5 minutes; the workload watching for it starts
with the module, and its test runs late, just before the one that stops the server."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.agent.peers import CERTFLEET, CertfleetServer, clean_env, wait_for
from tests.agent.workload.workloads import OTHER_UID, line, needs_root, started, workload
from tests.integration.one_worker import one_worker

pytestmark = [pytest.mark.integration, needs_root]

TD = "example.org"
HOST = "wl1.example.test"
WEB, API, STRANGER = OTHER_UID, OTHER_UID + 1, OTHER_UID + 2


@dataclass
class Fleet:
    server: CertfleetServer
    socket: Path
    agent: subprocess.Popen[bytes]
    agent_log: Path
    rotation: subprocess.Popen[str]


def _entry(server: CertfleetServer, path: str, *selectors: str, ttl: str = "1h") -> None:
    args = ["spiffe", "entry", "create", "--spiffe-id", f"spiffe://{TD}/{path}"]
    args += ["--parent", f"spiffe://{TD}/agent/{HOST}", "--ttl", ttl]
    for selector in selectors:
        args += ["--selector", selector]
    server.cli(*args)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("spiffe")
    server = CertfleetServer(one_worker(work / "data"))
    server.start()
    # The socket's directory must be reachable by other uids (pytest's tmp is 0700).
    public = Path(tempfile.mkdtemp(prefix="certfleet-spiffe-it-"))
    public.chmod(0o755)
    agent = None
    try:
        server.cli("spiffe", "init", "--trust-domain", TD)
        _entry(server, "ns/web", f"unix:uid:{WEB}", ttl="5m")
        _entry(server, "ns/api", f"unix:uid:{API}")
        state = work / "agent-state"
        server.enroll(server.join_token(HOST), state)
        socket = public / "run" / "agent.sock"
        config = work / "agent.yaml"
        config.write_text(
            yaml.safe_dump({"state_dir": str(state), "spiffe": {"trust_domain": TD, "socket": str(socket)}})
        )
        agent_log = work / "agent.log"
        with agent_log.open("wb") as log:
            agent = subprocess.Popen(
                [CERTFLEET, "agent", "run", "--config", str(config)], stdout=log, stderr=log, env=clean_env()
            )
        wait_for(
            lambda: "Workload API listening" in agent_log.read_text() or agent.poll() is not None,
            timeout=120,
            what="the agent's Workload API",
        )
        assert agent.poll() is None, agent_log.read_text()
        rotation = started(socket, "rotation", uid=WEB)
        yield Fleet(server, socket, agent, agent_log, rotation)
        rotation.kill()
        rotation.wait()
    finally:
        if agent is not None and agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)
        server.stop()
        shutil.rmtree(public, ignore_errors=True)


def test_the_socket_is_open_to_all_and_attestation_decides(fleet: Fleet) -> None:
    assert fleet.socket.stat().st_mode & 0o777 == 0o777
    assert fleet.socket.parent.stat().st_mode & 0o777 == 0o755


def test_a_uid_with_no_entry_is_refused(fleet: Fleet) -> None:
    refused = workload(fleet.socket, "x509", uid=STRANGER)
    assert "PERMISSION_DENIED" in str(refused["error"])


def test_jwt_source_fetches_and_validates_a_jwt_svid(fleet: Fleet) -> None:
    # The token is signed by the server's ES256 key; the workload checks it with the JWT
    # bundle the Workload API gave, and the agent checks it in ValidateJWTSVID.
    result = workload(fleet.socket, "jwt", "billing", uid=WEB)
    assert result["spiffe_id"] == result["local"] == result["remote"] == f"spiffe://{TD}/ns/web"
    assert "INVALID_ARGUMENT" in str(result["other"])


def test_two_workloads_establish_mutual_tls_with_only_what_the_api_gave(fleet: Fleet) -> None:
    server = started(fleet.socket, "serve", f"spiffe://{TD}/ns/web", uid=API)
    try:
        port = line(server)["port"]
        client = workload(fleet.socket, "connect", str(port), f"spiffe://{TD}/ns/api", uid=WEB)
        served = line(server)
    finally:
        server.wait(60)
    assert client["me"] == served["client"] == f"spiffe://{TD}/ns/web"
    assert client["server"] == served["me"] == f"spiffe://{TD}/ns/api"
    assert served["received"] == f"ping from spiffe://{TD}/ns/web"


def test_x509_source_receives_an_svid_and_its_rotation(fleet: Fleet) -> None:
    first = line(fleet.rotation)
    second = line(fleet.rotation)  # pushed when the agent rotates, at half the 5-minute TTL
    assert first["spiffe_id"] == second["spiffe_id"] == f"spiffe://{TD}/ns/web"
    assert first["serial"] != second["serial"]
    assert fleet.agent.poll() is None, fleet.agent_log.read_text()


def test_cached_svids_are_served_while_the_server_is_down(fleet: Fleet) -> None:
    # Given the server gone, and the agent's next sync failing on it
    fleet.server.stop()
    wait_for(
        lambda: "keeping the cached SVIDs" in fleet.agent_log.read_text(),
        timeout=60,
        what="the agent to find the server unreachable",
    )
    # Then workloads still get their SVIDs from the agent's cache
    assert workload(fleet.socket, "x509", uid=WEB)["spiffe_id"] == f"spiffe://{TD}/ns/web"
    assert workload(fleet.socket, "x509", uid=API)["spiffe_id"] == f"spiffe://{TD}/ns/api"

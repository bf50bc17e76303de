"""The agent with a real certfleet server (mTLS) and a real nginx on loopback: enrol, issue,
deploy, reload, verify; a renewal the server schedules; a broken reload rolled back; a
SIGKILL in the middle of a deployment; token replay, expiry and a revoked agent refused."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from certfleet.x509 import load_certificates
from tests.agent.peers import (
    CERTFLEET,
    CertfleetServer,
    Nginx,
    agent_yaml,
    certfleet,
    clean_env,
    deployed,
    wait_for,
)
from tests.integration.one_worker import one_worker

pytestmark = pytest.mark.integration

HOST = "web1.example.test"


@dataclass
class Fleet:
    server: CertfleetServer
    nginx: Nginx
    state: Path
    config: Path
    base: Path

    def run(self, *extra: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        config = config or self.config
        argv = ["agent", "run", "--config", str(config), "--once", "--state-dir", str(self.state), *extra]
        return certfleet(*argv, check=False)

    def deployments(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = json.loads(
            self.server.cli("agent", "deployments", "--host", HOST, "--format", "json").stdout
        )
        return rows


def config_text(nginx: Nginx, server: CertfleetServer, reload: list[str] | None = None) -> str:
    return f"""\
server: {server.https}
allowed_dirs: [{nginx.tls}]
certificates:
  - name: web
    names: [localhost, 127.0.0.1]
    profile: tls-server
    key_type: ec-p256
    files: {{key: {nginx.tls}/web.key, fullchain: {nginx.tls}/web.crt}}
    reload: {json.dumps(reload or nginx.reload_argv())}
    health_check: {{connect: "127.0.0.1:{nginx.port}", sni: localhost, timeout_seconds: 20}}
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("agent-nginx")
    server = CertfleetServer(one_worker(base / "data"))
    server.start()
    nginx = Nginx(base / "nginx")
    try:
        nginx.start()
        state = base / "state"
        token = server.join_token(HOST, "localhost", "127.0.0.1")
        enrolled = server.enroll(token, state)
        assert f"enrolled as {HOST}" in enrolled.stdout
        config = agent_yaml(base / "agent.yaml", config_text(nginx, server))
        yield Fleet(server, nginx, state, config, base)
    finally:
        nginx.stop()
        server.stop()


def test_enrol_issue_deploy_reload_renew_and_roll_back(fleet: Fleet) -> None:
    nginx, server = fleet.nginx, fleet.server
    snakeoil = nginx.presented()
    identity = (fleet.state / "identity.pem").stat()
    assert oct(identity.st_mode & 0o777) == "0o600"

    # Given an enrolled agent, when it runs: certfleet issues, the files switch, nginx reloads.
    first = fleet.run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "web: deployed" in first.stdout
    fingerprint, pair = deployed(nginx.tls)
    assert pair and fingerprint != snakeoil
    assert nginx.presented() == fingerprint
    record = json.loads(server.cli("inventory", "show", fingerprint, "--format", "json").stdout)
    assert record["source"] == "issued" and record["team"] == "web" and f"agent:{HOST}" in record["tags"]
    # ... and the inventory knows where it lives: host, paths and endpoint.
    [row] = fleet.deployments()
    assert row["status"] == "deployed" and row["fingerprint_sha256"] == fingerprint
    assert row["paths"] == [str(nginx.tls / "web.crt"), str(nginx.tls / "web.key")]
    assert row["endpoint"] == f"127.0.0.1:{nginx.port}"
    locations = server.api(f"/api/v1/certificates/{record['serial']}/locations")["locations"]
    assert {loc["location"] for loc in locations} == {
        f"file://{HOST}{nginx.tls}/web.key",
        f"file://{HOST}{nginx.tls}/web.crt",
        f"127.0.0.1:{nginx.port}",
    }

    # Nothing to do on the next run.
    assert "web: unchanged" in fleet.run().stdout

    # When the server schedules a renewal (an operator's renew-now), nginx serves the new one.
    server.cli("acme", "renew-now", record["serial"])
    renewed = fleet.run()
    assert renewed.returncode == 0 and "server schedule" in renewed.stdout, renewed.stdout + renewed.stderr
    second, pair = deployed(nginx.tls)
    assert pair and second != fingerprint and nginx.presented() == second

    # When nginx's configuration is broken, the reload fails: the previous files come back
    # and nginx keeps serving the previous certificate.
    nginx.write_conf(extra="this is not nginx syntax;\n")
    serial_two = json.loads(server.cli("inventory", "show", second, "--format", "json").stdout)["serial"]
    server.cli("acme", "renew-now", serial_two)
    broken = fleet.run()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "web: rolled_back" in broken.stdout and "previous files restored" in broken.stdout
    assert deployed(nginx.tls) == (second, True)
    assert nginx.presented() == second
    [row] = fleet.deployments()
    assert row["status"] == "rolled_back" and row["fingerprint_sha256"] != second

    # Once fixed, the retry deploys the certificate issued for the failed attempt.
    nginx.write_conf()
    fixed = fleet.run("--force-cert", "web")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    third, pair = deployed(nginx.tls)
    assert pair and third == row["fingerprint_sha256"] and nginx.presented() == third


def test_killed_in_the_middle_of_a_deployment_the_pair_stays_consistent(fleet: Fleet) -> None:
    """SIGKILL the real agent process while its reload command runs (after the switch); on
    restart the files are one consistent pair and the agent completes the deployment."""
    before, _ = deployed(fleet.nginx.tls)
    marker = fleet.base / "reload-started"
    slow = fleet.base / "slow-reload"
    slow.write_text(f"#!/bin/sh\ntouch {marker}\nexec sleep 300\n")
    slow.chmod(0o755)
    slow_config = agent_yaml(fleet.base / "slow.yaml", config_text(fleet.nginx, fleet.server, [str(slow)]))
    argv = [
        CERTFLEET,
        "agent",
        "run",
        "--config",
        str(slow_config),
        "--once",
        "--force",
        "--state-dir",
        str(fleet.state),
    ]
    process = subprocess.Popen(
        argv, env=clean_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(marker.exists, timeout=60, what="the agent to reach its reload")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    after, pair = deployed(fleet.nginx.tls)
    assert pair, "a killed deployment left a key that does not match its certificate"
    assert after != before  # the switch had happened; nginx was not reloaded yet
    assert fleet.nginx.presented() == before

    restarted = fleet.run()
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert deployed(fleet.nginx.tls) == (after, True)
    assert fleet.nginx.presented() == after
    [row] = fleet.deployments()
    assert row["status"] == "deployed" and row["detail"] == "completed after an interrupted run"


def test_killed_at_random_moments_the_pair_is_always_consistent(fleet: Fleet) -> None:
    """A real ``agent run`` killed at random points of a forced renewal, five times."""
    rng = random.Random(7)
    argv = [
        CERTFLEET,
        "agent",
        "run",
        "--config",
        str(fleet.config),
        "--once",
        "--force",
        "--state-dir",
        str(fleet.state),
    ]
    for _ in range(5):
        process = subprocess.Popen(
            argv,
            env=clean_env(),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + rng.uniform(0.5, 3.0)
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        fingerprint, pair = deployed(fleet.nginx.tls)
        assert pair, "a killed deployment left a key that does not match its certificate"
    settled = fleet.run()
    assert settled.returncode == 0, settled.stdout + settled.stderr
    fingerprint, pair = deployed(fleet.nginx.tls)
    assert pair and fleet.nginx.presented() == fingerprint


def test_a_join_token_works_once_and_only_before_it_expires(fleet: Fleet) -> None:
    token = fleet.server.join_token("replay.example.test")
    assert fleet.server.enroll(token, fleet.base / "replay-1").returncode == 0
    replay = fleet.server.enroll(token, fleet.base / "replay-2", check=False)
    assert replay.returncode == 2 and "already used" in replay.stderr
    assert "Traceback" not in replay.stderr

    short = fleet.server.join_token("late.example.test", ttl="1s")
    created = time.monotonic()
    wait_for(lambda: time.monotonic() - created > 1.5, what="the token's TTL to pass")
    late = fleet.server.enroll(short, fleet.base / "late", check=False)
    assert late.returncode == 2 and "expired" in late.stderr


def test_a_revoked_agent_is_refused(fleet: Fleet) -> None:
    state = fleet.base / "revoked-state"
    fleet.server.enroll(fleet.server.join_token("gone.example.test"), state)
    config = agent_yaml(
        fleet.base / "gone.yaml",
        f"""\
server: {fleet.server.https}
allowed_dirs: [{fleet.base / "gone-tls"}]
certificates:
  - name: gone
    names: [gone.example.test]
    files: {{key: {fleet.base / "gone-tls"}/k, cert: {fleet.base / "gone-tls"}/c}}
""",
    )
    (fleet.base / "gone-tls").mkdir()
    run = ("agent", "run", "--config", str(config), "--once", "--state-dir", str(state))
    ok = certfleet(*run, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The agent renews its own identity (forced here; by itself in the last third of its life)
    # and authenticates with the new one.
    before = load_certificates((state / "identity.pem").read_bytes())[0]
    renewed = certfleet(*run, "--renew-identity", check=False)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    after = load_certificates((state / "identity.pem").read_bytes())[0]
    assert after.serial_number != before.serial_number
    assert certfleet(*run, "--force", check=False).returncode == 0
    fleet.server.cli("agent", "revoke", "gone.example.test")
    refused = certfleet(*run, "--force", check=False)
    assert refused.returncode == 2 and "gone.example.test has been revoked" in refused.stderr
    agents = {a["name"]: a for a in json.loads(fleet.server.cli("agent", "list", "--format", "json").stdout)}
    assert agents["gone.example.test"]["status"] == "revoked"

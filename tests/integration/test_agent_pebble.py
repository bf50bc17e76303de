"""The agent gets certificates from a real external ACME CA (pebble) with http-01 through its
standalone listener and with dns-01 through a hook, deploys them behind nginx, and the
certfleet inventory then shows them with their locations."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from certfleet.x509 import fingerprint_sha256, load_certificates
from tests.agent.peers import CertfleetServer, Nginx, Pebble, agent_yaml, certfleet, deployed
from tests.integration.one_worker import one_worker

pytestmark = pytest.mark.integration

HOST = "edge1.example.test"


@dataclass
class Setup:
    server: CertfleetServer
    pebble: Pebble
    nginx: Nginx
    state: Path
    base: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("agent-pebble")
    server = CertfleetServer(one_worker(base / "data"))
    pebble = Pebble(base / "pebble")
    nginx = Nginx(base / "nginx")
    try:
        server.start()
        pebble.start()
        nginx.start()
        state = base / "state"
        server.enroll(server.join_token(HOST, "**.example.test", team="edge"), state)
        yield Setup(server, pebble, nginx, state, base)
    finally:
        nginx.stop()
        pebble.stop()
        server.stop()


def verify_chain(workdir: Path, root: bytes, fullchain: Path) -> None:
    certs = load_certificates(fullchain.read_bytes())
    (workdir / "root.pem").write_bytes(root)
    (workdir / "leaf.pem").write_bytes(
        fullchain.read_bytes().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    )
    (workdir / "untrusted.pem").write_bytes(fullchain.read_bytes())
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(workdir / "root.pem"),
            "-untrusted",
            str(workdir / "untrusted.pem"),
            str(workdir / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and len(certs) >= 2, result.stdout + result.stderr


def test_http01_certificate_from_pebble_is_deployed_and_inventoried(setup: Setup) -> None:
    nginx, pebble, server = setup.nginx, setup.pebble, setup.server
    config = agent_yaml(
        setup.base / "http01.yaml",
        f"""\
server: {server.https}
allowed_dirs: [{nginx.tls}]
certificates:
  - name: web
    names: [www.example.test, api.example.test]
    key_type: ec-p256
    issuer:
      acme:
        directory: {pebble.directory}
        email: ops@example.test
        ca_bundle: {pebble.tls_cert}
        http01: {{listen: "127.0.0.1:{pebble.http_port}"}}
    files:
      key: {nginx.tls}/web.key
      fullchain: {nginx.tls}/web.crt
      pkcs12: {{path: {nginx.tls}/web.p12, password: changeit}}
    reload: {json.dumps(nginx.reload_argv())}
    health_check: {{connect: "127.0.0.1:{nginx.port}", sni: www.example.test}}
""",
    )
    run = certfleet(
        "agent", "run", "--config", str(config), "--once", "--state-dir", str(setup.state), check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "web: deployed" in run.stdout
    assert "did not take" not in run.stderr, run.stderr
    fingerprint, pair = deployed(nginx.tls)
    assert pair and nginx.presented() == fingerprint
    verify_chain(setup.base, pebble.root(), nginx.tls / "web.crt")  # issued by pebble, not certfleet

    record = json.loads(server.cli("inventory", "show", fingerprint, "--format", "json").stdout)
    assert record["source"] == "imported" and record["team"] == "edge"
    assert "acme" in record["tags"] and f"agent:{HOST}" in record["tags"]
    assert sorted(record["sans"]) == ["api.example.test", "www.example.test"]
    locations = server.api(f"/api/v1/certificates/{record['serial']}/locations")["locations"]
    assert {loc["location"] for loc in locations} == {
        f"file://{HOST}{nginx.tls}/web.key",
        f"file://{HOST}{nginx.tls}/web.crt",
        f"file://{HOST}{nginx.tls}/web.p12",
        f"127.0.0.1:{nginx.port}",
    }
    [row] = json.loads(server.cli("agent", "deployments", "--host", HOST, "--format", "json").stdout)
    assert row["issuer"] == "acme" and row["status"] == "deployed"

    # A second run has nothing to do; a forced one gets a new certificate from pebble.
    assert (
        "web: unchanged"
        in certfleet(
            "agent", "run", "--config", str(config), "--once", "--state-dir", str(setup.state)
        ).stdout
    )
    forced = certfleet(
        "agent", "run", "--config", str(config), "--once", "--force", "--state-dir", str(setup.state)
    )
    assert "web: deployed" in forced.stdout
    renewed, pair = deployed(nginx.tls)
    assert pair and renewed != fingerprint and nginx.presented() == renewed


def test_dns01_through_a_hook(setup: Setup) -> None:
    pebble, server = setup.pebble, setup.server
    tls = setup.base / "dns-tls"
    tls.mkdir()
    config = agent_yaml(
        setup.base / "dns01.yaml",
        f"""\
server: {server.https}
allowed_dirs: [{tls}]
certificates:
  - name: wild
    names: ["*.apps.example.test"]
    issuer:
      acme:
        directory: {pebble.directory}
        ca_bundle: {pebble.tls_cert}
        dns01: {{hook: [{pebble.dns_hook()}]}}
    files: {{key: {tls}/wild.key, cert: {tls}/wild.crt, chain: {tls}/wild-chain.crt}}
""",
    )
    run = certfleet(
        "agent", "run", "--config", str(config), "--once", "--state-dir", str(setup.state), check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "did not take" not in run.stderr, run.stderr
    cert = load_certificates((tls / "wild.crt").read_bytes())[0]
    assert load_certificates((tls / "wild-chain.crt").read_bytes())[0].subject == cert.issuer
    record = json.loads(server.cli("inventory", "show", fingerprint_sha256(cert), "--format", "json").stdout)
    assert record["sans"] == ["*.apps.example.test"] and record["source"] == "imported"


def test_names_outside_the_agents_policy_are_not_imported(setup: Setup) -> None:
    """The ACME CA may issue any name it validates; the inventory takes only the agent's."""
    pebble, server = setup.pebble, setup.server
    tls = setup.base / "other-tls"
    tls.mkdir()
    config = agent_yaml(
        setup.base / "other.yaml",
        f"""\
server: {server.https}
allowed_dirs: [{tls}]
certificates:
  - name: other
    names: [www.other.test]
    issuer:
      acme:
        directory: {pebble.directory}
        ca_bundle: {pebble.tls_cert}
        http01: {{listen: "127.0.0.1:{pebble.http_port}"}}
    files: {{key: {tls}/o.key, cert: {tls}/o.crt}}
""",
    )
    run = certfleet(
        "agent", "run", "--config", str(config), "--once", "--state-dir", str(setup.state), check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr  # deployed on the host ...
    assert "did not take the deployment report" in run.stderr and "www.other.test" in run.stderr
    cert = load_certificates((tls / "o.crt").read_bytes())[0]
    missing = server.cli("inventory", "show", format(cert.serial_number, "x"), check=False)
    assert missing.returncode == 2  # ... but not in another team's inventory

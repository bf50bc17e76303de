"""A migration to the post-quantum hierarchy end to end (issue 17): a real ``certfleet serve``
with its classic hierarchy and a second one made by ``certfleet ca create --key-type
ml-dsa-65``; real agent processes (``certfleet agent run --once``) holding RSA-2048
certificates: for team web, a client certificate in files (a service that presents it to
its peers, no TLS endpoint of its own); for team edge, the certificate of a real nginx
(Debian 12: OpenSSL 3.0, which cannot load an ML-DSA certificate).

The campaign ``rotate --select 'key_type=rsa-2048' --to-profile internal-mtls-pq`` moves team
web's files to ML-DSA-65 (chain verified to the PQ root with ``cryptography``, key 0600) and
team web's exposure falls to zero; nginx's reload refuses the ML-DSA certificate, the agent
rolls back (nginx keeps serving its RSA certificate) and says the endpoint cannot present
ml-dsa-65, which the campaign keeps as that target's outcome instead of aborting."""

from __future__ import annotations

import datetime as dt
import json
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa, rsa
from cryptography.x509.verification import PolicyBuilder, Store

from certfleet.x509 import load_certificates
from tests.agent.peers import (
    CertfleetServer,
    Nginx,
    agent_yaml,
    certfleet,
    deployed,
)
from tests.integration.one_worker import one_worker

pytestmark = pytest.mark.integration

WEB, EDGE = "svc1.web.test", "edge1.edge.test"


class PqServer(CertfleetServer):
    """``certfleet init`` and ``ca create --key-type ml-dsa-65`` on the data directory, then
    ``certfleet serve --init`` on it (both hierarchies exist before the server starts)."""

    def start(self) -> None:
        self.cli("init")
        self.cli("ca", "create", "--key-type", "ml-dsa-65", "--name", "PQ Root")
        super().start()  # serve --init on it: its first start mints the admin token only

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--format", "json").stdout)


@dataclass
class Agent:
    state: Path
    config: Path

    def run(self) -> subprocess.CompletedProcess[str]:
        argv = ["agent", "run", "--config", str(self.config), "--once", "--state-dir", str(self.state)]
        return certfleet(*argv, check=False)


@dataclass
class Fleet:
    server: PqServer
    nginx: Nginx
    web: Agent
    edge: Agent
    files: Path


def _enrolled(server: PqServer, base: Path, host: str, team: str, config: str, *allow: str) -> Agent:
    state = base / f"state-{team}"
    server.enroll(server.join_token(host, *allow, team=team), state)
    return Agent(state, agent_yaml(base / f"agent-{team}.yaml", config))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("pq-migration")
    server = PqServer(one_worker(base / "data"))
    nginx = Nginx(base / "nginx")
    files = base / "svc"
    files.mkdir()
    try:
        server.start()
        nginx.start()
        web = _enrolled(
            server,
            base,
            WEB,
            "web",
            f"""\
server: {server.https}
allowed_dirs: [{files}]
certificates:
  - name: client
    names: [svc.web.test]
    profile: tls-client
    key_type: rsa-2048
    files: {{key: {files}/client.key, fullchain: {files}/client.crt}}
""",
            "svc.web.test",
        )
        edge = _enrolled(
            server,
            base,
            EDGE,
            "edge",
            f"""\
server: {server.https}
allowed_dirs: [{nginx.tls}]
certificates:
  - name: web
    names: [localhost]
    profile: tls-server
    key_type: rsa-2048
    files: {{key: {nginx.tls}/web.key, fullchain: {nginx.tls}/web.crt}}
    reload: {json.dumps(nginx.reload_argv())}
    health_check: {{connect: "127.0.0.1:{nginx.port}", sni: localhost, timeout_seconds: 5}}
""",
            "localhost",
        )
        yield Fleet(server, nginx, web, edge, files)
    finally:
        nginx.stop()
        server.stop()


def _verified_to(root: x509.Certificate, fullchain: Path) -> x509.Certificate:
    """The leaf of ``fullchain``, its chain verified to ``root`` (OpenSSL 3.0 cannot: ML-DSA)."""
    leaf, *intermediates = load_certificates(fullchain.read_bytes())
    verifier = PolicyBuilder().store(Store([root])).time(dt.datetime.now(dt.UTC)).build_client_verifier()
    verifier.verify(leaf, intermediates)
    return leaf


def test_a_campaign_moves_rsa_2048_to_ml_dsa_65_and_team_web_exposure_falls_to_zero(fleet: Fleet) -> None:
    server, nginx = fleet.server, fleet.nginx
    # Given both agents deployed their RSA-2048 certificates
    for agent in (fleet.web, fleet.edge):
        first = agent.run()
        assert first.returncode == 0 and ": deployed" in first.stdout, first.stdout + first.stderr
    rsa_nginx, _ = deployed(nginx.tls)
    assert nginx.presented() == rsa_nginx
    key = serialization.load_pem_private_key((fleet.files / "client.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    before = server.json("crypto", "report", "--team", "web")["summary"]
    assert (before["certificates"], before["quantum_vulnerable"]) == (1, 1)
    # When the campaign moves every RSA-2048 certificate to internal-mtls-pq
    created = server.cli("rotate", "--select", "key_type=rsa-2048", "--to-profile", "internal-mtls-pq")
    campaign = created.stdout.split()[1].rstrip(":")
    # and each agent runs once: it renews with a new ML-DSA-65 key, as its instruction says
    web_run, edge_run = fleet.web.run(), fleet.edge.run()
    # Then team web's files hold an ML-DSA-65 certificate chaining to the PQ root, key 0600
    assert web_run.returncode == 0 and "client: deployed" in web_run.stdout, web_run.stdout + web_run.stderr
    [pq_root] = [c for c in server.json("ca", "list") if c["role"] == "root" and "PQ Root" in json.dumps(c)]
    root = x509.load_pem_x509_certificate(
        server.json("ca", "show", pq_root["id"])["certificate_pem"].encode()
    )
    leaf = _verified_to(root, fleet.files / "client.crt")
    key = serialization.load_pem_private_key((fleet.files / "client.key").read_bytes(), None)
    assert isinstance(key, mldsa.MLDSA65PrivateKey) and key.public_key() == leaf.public_key()
    assert stat.S_IMODE((fleet.files / "client.key").stat().st_mode) == 0o600
    # And nginx could not load it: rolled back, still serving its RSA certificate, and said so
    assert edge_run.returncode == 1, edge_run.stdout + edge_run.stderr
    assert "web: rolled_back" in edge_run.stdout + edge_run.stderr
    assert "endpoint cannot present ml-dsa-65: " in edge_run.stdout + edge_run.stderr
    assert deployed(nginx.tls) == (rsa_nginx, True) and nginx.presented() == rsa_nginx
    # When the campaign is worked again, it records the outcome per target and completes
    server.cli("rotate", "resume", campaign)
    status = server.json("rotate", "status", campaign, "--items")
    outcomes = {i["holder"]: i for i in status["items"]}
    outcome = outcomes[EDGE]["last_error"]
    assert outcome.startswith(f"issued; rolled_back on {EDGE} (web): endpoint cannot present ml-dsa-65: "), (
        outcome
    )
    assert outcome.count("cannot present") == 1 and "[emerg]" in outcome and "serving again" in outcome
    assert outcomes[WEB]["state"] == "reissued" and outcomes[WEB]["last_error"] is None
    assert status["status"] == "completed", status
    # And team web's exposure is zero. Listed apart in the unscoped report: its agent's EC
    # identity (certfleet's plumbing) and the public roots of the hosts' trust stores, which
    # the agents report by default (about 150 on Debian 12), none of them a team's
    after = server.json("crypto", "report", "--team", "web")["summary"]
    assert (after["certificates"], after["quantum_vulnerable"], after["quantum_safe"]) == (1, 0, 1)
    everything = server.json("crypto", "report")
    owners = {(c["source"], c["owner"], c["team"]) for c in everything["certificates"] if c["note"]}
    assert owners == {
        ("agent-identity", "certfleet (agent identity)", None),
        ("trust-anchor", "its CA (in hosts' trust stores)", None),
    }
    assert everything["summary"]["agent_identities"] == 2 and everything["summary"]["trust_anchors"] > 100
    # And the next runs keep ML-DSA for team web and RSA on nginx
    assert "client: unchanged" in fleet.web.run().stdout

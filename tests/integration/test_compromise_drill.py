"""The compromise drill end to end, as the README tells an operator to run it: a real
``certfleet serve`` (ACME on, its scheduler every half second), a real agent process deploying
to a real nginx, certbot, and ``certfleet ca compromise``. Then nginx serves a certificate of
the new intermediate after one ``agent run --once``, the agent authenticates with an identity
of the new intermediate and the old one is refused, certbot renews on its ARI check, the old
certificates answer "revoked" over OCSP, and the campaign completes; a second campaign with a
short deadline revokes what an agent that never runs again still holds, and says so."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import create_engine, text

from certfleet.ca import ca_id_for
from certfleet.config import load_settings
from certfleet.x509 import fingerprint_sha256, load_certificates
from tests.agent.peers import Nginx, agent_yaml, certfleet, deployed, wait_for
from tests.integration.test_acme_certbot import Certbot
from tests.ports import free_port
from tests.protocols.acme.peers import CertfleetServe, ChallTestSrv, serial_of

pytestmark = pytest.mark.integration

HOST = "web1.example.test"
DEAD = "dead.example.test"
CAMPAIGN_WAIT_SECONDS = 90


@dataclass
class Drill:
    base: Path
    serve: CertfleetServe
    nginx: Nginx
    certbot: Certbot
    state: Path
    config: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.serve.cli(*args)
        assert result.returncode == 0, f"certfleet {' '.join(args)}: {result.stdout}{result.stderr}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--format", "json").stdout)

    def agent(self, config: Path, state: Path) -> subprocess.CompletedProcess[str]:
        return certfleet(
            "agent", "run", "--config", str(config), "--once", "--state-dir", str(state), check=False
        )

    def enroll(self, host: str, state: Path, *allow: str) -> None:
        args = ["agent", "token", "create", "--host", host, "--team", "web", "--ttl", "1h"]
        for name in allow:
            args += ["--allow-names", name]
        token = self.cli(*args).stdout.strip()
        root = fingerprint_sha256(load_certificates(self.serve.root_pem.read_bytes())[0])
        server = f"https://127.0.0.1:{self.serve.https_port}"
        certfleet("agent", "enroll", "--server", server, "--token", token, "--ca-fingerprint", root,
                  "--state-dir", str(state))  # fmt: skip

    def issuing_ca(self) -> dict[str, Any]:
        [ca] = [c for c in self.json("ca", "list") if c["role"] == "intermediate" and c["active"]]
        return dict(ca)

    def compromise(self, ca_id: str, *extra: str) -> str:
        result = self.json("ca", "compromise", ca_id, "--yes", "--revoke-old-after", "0", *extra)
        assert result["revoked_ca"] == ca_id and result["campaign"], result
        return str(result["campaign"])

    def serves_from(self, ca_id: str) -> None:
        """Wait until the running server issues from ``ca_id`` (its scheduler notices a CA
        rotation made by another process within one round)."""

        def current() -> bool:
            pem = httpx.get(
                f"https://127.0.0.1:{self.serve.https_port}/api/v1/agent/ca.pem",
                verify=False,
                trust_env=False,
            ).content
            return ca_id in {ca_id_for(c) for c in load_certificates(pem)}

        wait_for(current, timeout=30, what=f"serve to issue from {ca_id}")

    def completed(self, campaign: str) -> dict[str, Any]:
        def status() -> dict[str, Any] | None:
            found: dict[str, Any] = self.json("rotate", "status", campaign, "--items")
            return found if found["status"] == "completed" else None

        result: dict[str, Any] = wait_for(
            status, timeout=CAMPAIGN_WAIT_SECONDS, what="the campaign to complete"
        )
        return result

    def mtls_instructions(self, identity: Path) -> httpx.Response:
        """``GET /api/v1/agent/instructions`` presenting ``identity`` (server not verified:
        what is checked here is whether the server takes the client certificate)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(str(identity))
        with httpx.Client(verify=context, trust_env=False) as client:
            return client.get(f"https://127.0.0.1:{self.serve.https_port}/api/v1/agent/instructions")


def nginx_agent_config(path: Path, nginx: Nginx, server: str) -> Path:
    return agent_yaml(
        path,
        f"""\
server: {server}
allowed_dirs: [{nginx.tls}]
certificates:
  - name: web
    names: [localhost, 127.0.0.1]
    profile: tls-server
    key_type: ec-p256
    files: {{key: {nginx.tls}/web.key, fullchain: {nginx.tls}/web.crt}}
    reload: {json.dumps(nginx.reload_argv())}
    health_check: {{connect: "127.0.0.1:{nginx.port}", sni: localhost, timeout_seconds: 20}}
""",
    )


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    base = tmp_path_factory.mktemp("compromise-drill")
    dns = ChallTestSrv()
    http01_port = free_port()
    serve = CertfleetServe(
        base / "serve",
        dns,
        http01_port=http01_port,
        tlsalpn01_port=free_port(),
        # One serving process: no worker is under test here.
        acme_config="[lifecycle]\ninterval_seconds = 0.5\n[server]\nworkers = 1\n",
    )
    nginx = Nginx(base / "nginx")
    try:
        nginx.start()
        state = base / "state"
        config = nginx_agent_config(base / "agent.yaml", nginx, f"https://127.0.0.1:{serve.https_port}")
        drill = Drill(base, serve, nginx, Certbot(serve, http01_port, base / "certbot"), state, config)
        drill.enroll(HOST, state, "localhost", "127.0.0.1")
        yield drill
    finally:
        nginx.stop()
        serve.stop()
        dns.stop()


def _leaf_and_issuer(fullchain: Path) -> tuple[x509.Certificate, x509.Certificate]:
    chain = load_certificates(fullchain.read_bytes())
    chain[0].verify_directly_issued_by(chain[1])
    return chain[0], chain[1]


def test_the_compromise_drill(drill: Drill) -> None:
    nginx, base = drill.nginx, drill.base
    # Step 1: the agent deploys a tls-server certificate to nginx; certbot holds another one
    first = drill.agent(drill.config, drill.state)
    assert first.returncode == 0 and "web: deployed" in first.stdout, first.stdout + first.stderr
    old_fp, _ = deployed(nginx.tls)
    assert nginx.presented() == old_fp
    old_leaf, old_ca = _leaf_and_issuer(nginx.tls / "web.crt")
    (base / "old-web.pem").write_bytes(old_leaf.public_bytes(Encoding.PEM))
    (base / "old-ca.pem").write_bytes(old_ca.public_bytes(Encoding.PEM))
    old_identity = base / "old-identity.pem"
    shutil.copy(drill.state / "identity.pem", old_identity)
    acme_name = "drill.certbot.example.test"
    drill.certbot.certonly(acme_name)
    acme_before = serial_of(drill.certbot.live(acme_name) / "cert.pem")
    # Step 2: a certificate issued from the CLI
    drill.cli("issue", "--profile", "tls-server", "--cn", "api.example.test", "--san", "api.example.test",
              "--out", str(base / "api"))  # fmt: skip
    api_serial = serial_of(base / "api" / "cert.pem")
    # Step 3: the issuing intermediate is compromised
    bad = drill.issuing_ca()
    assert old_ca.subject.rfc4514_string() == bad["subject"]
    campaign = drill.compromise(bad["id"])
    new = drill.issuing_ca()
    assert new["id"] != bad["id"]
    drill.serves_from(new["id"])

    # Then one agent run replaces nginx's certificate with one of the new intermediate ...
    run = drill.agent(drill.config, drill.state)
    assert run.returncode == 0 and "web: deployed" in run.stdout, run.stdout + run.stderr
    assert "server schedule" in run.stdout + run.stderr
    new_fp, pair = deployed(nginx.tls)
    assert pair and new_fp != old_fp and nginx.presented() == new_fp
    _, issuer = _leaf_and_issuer(nginx.tls / "web.crt")
    assert ca_id_for(issuer) == new["id"] and issuer.subject.rfc4514_string() == new["subject"]
    # ... and rolls the agent's identity to the new intermediate
    identity = load_certificates((drill.state / "identity.pem").read_bytes())
    assert identity[0].issuer.rfc4514_string() == new["subject"]
    # Nothing to do on the next run: the new certificate is certfleet's, its window far away
    again = drill.agent(drill.config, drill.state)
    assert again.returncode == 0 and "web: unchanged" in again.stdout, again.stdout + again.stderr
    # certbot renews at its next check: the ARI window ended in the past (RFC 9773 4.2)
    drill.certbot("renew", "--no-random-sleep-on-renew")
    acme_after = serial_of(drill.certbot.live(acme_name) / "cert.pem")
    assert acme_after != acme_before
    renewed = x509.load_pem_x509_certificate((drill.certbot.live(acme_name) / "cert.pem").read_bytes())
    assert renewed.issuer.rfc4514_string() == new["subject"]

    # The server's scheduler completes the campaign: every old certificate revoked
    status = drill.completed(campaign)
    items = {i["serial"]: i for i in status["items"]}
    assert {i["state"] for i in items.values()} == {"reissued"}
    assert all(i["old_revoked_at"] for i in items.values())
    assert items[format(old_leaf.serial_number, "x")]["holder"] == HOST
    assert items[format(old_leaf.serial_number, "x")]["deployed_at"] is not None
    assert items[api_serial]["action"] == "reissue" and items[acme_before]["action"] == "ari"
    created = dt.datetime.fromisoformat(status["created_at"].replace("Z", "+00:00"))
    deadline = dt.datetime.fromisoformat(status["deadline"].replace("Z", "+00:00"))
    assert deadline - created == dt.timedelta(hours=24)  # the default
    # The old nginx certificate is revoked, as the old CA's OCSP responder says
    ocsp = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(base / "old-ca.pem"), "-cert", str(base / "old-web.pem"),
         "-url", f"http://127.0.0.1:{drill.serve.http_port}/ocsp", "-CAfile", str(drill.serve.root_pem),
         "-resp_text"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert f"{base / 'old-web.pem'}: revoked" in ocsp.stdout, ocsp.stdout + ocsp.stderr
    assert "Reason: cACompromise" in ocsp.stdout
    # The old identity is refused; the new one is taken
    refused = drill.mtls_instructions(old_identity)
    assert refused.status_code == 403 and "has been revoked" in refused.text, refused.text
    assert drill.mtls_instructions(drill.state / "identity.pem").status_code == 200


def test_a_dead_agent_is_revoked_at_the_deadline(drill: Drill) -> None:
    # Given an agent that deploys once and then never runs again
    state, tls = drill.base / "dead-state", drill.base / "dead-tls"
    tls.mkdir()
    drill.enroll(DEAD, state)
    config = agent_yaml(
        drill.base / "dead.yaml",
        f"""\
server: https://127.0.0.1:{drill.serve.https_port}
allowed_dirs: [{tls}]
certificates:
  - name: dead
    names: [{DEAD}]
    files: {{key: {tls}/dead.key, fullchain: {tls}/dead.crt}}
""",
    )
    drill.serves_from(drill.issuing_ca()["id"])
    ran = drill.agent(config, state)
    assert ran.returncode == 0 and "dead: deployed" in ran.stdout, ran.stdout + ran.stderr
    serial = format(load_certificates((tls / "dead.crt").read_bytes())[0].serial_number, "x")
    # When its CA is compromised with a deadline of a few seconds
    campaign = drill.compromise(drill.issuing_ca()["id"], "--deadline", "3s")
    # Then the server's scheduler revokes its certificate at the deadline and completes
    status = drill.completed(campaign)
    item = next(i for i in status["items"] if i["serial"] == serial)
    assert item["state"] == "overdue-revoked" and item["holder"] == DEAD and item["old_revoked_at"]
    record = drill.json("inventory", "show", serial)
    assert (record["status"], record["revocation_reason"]) == ("revoked", "caCompromise")
    # ... and a rotation-overdue notification names the host
    settings = load_settings({}, data_dir=drill.serve.data_dir)
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT subject, payload_json FROM notification_events WHERE kind = 'rotation-overdue'")
            ).all()
    finally:
        engine.dispose()
    named = {(json.loads(payload)["details"]["host"], subject) for subject, payload in found}
    assert (DEAD, serial) in named

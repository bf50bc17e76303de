"""Issue 17: a data directory whose default hierarchy is ML-DSA-65 serves over TLS that
today's clients (OpenSSL 3.0: Python's ssl, agents, ``certfleet login``) verify.

Given ``certfleet init --key-type ml-dsa-65`` (the real executable), which prints the ML-DSA
root's and the classic TLS root's SHA-256, when ``certfleet serve`` runs on that directory,
then the handshake verifies against the TLS root alone, REST issues an ML-DSA-65 leaf whose
chain verifies with ``cryptography`` up to the ML-DSA root, and ``certfleet login`` pins the
TLS root's fingerprint and refuses any other, and an agent enrolled the same way deploys a
leaf of the ML-DSA hierarchy."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, mldsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import PolicyBuilder, Store

from certfleet.x509 import fingerprint_sha256, load_certificates
from tests.agent.peers import CERTFLEET, START_DEADLINE_SECONDS, certfleet, clean_env
from tests.ports import free_port

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class PqServer:
    url: str
    data_dir: Path
    token: str
    root_fingerprint: str  # the ML-DSA default root
    tls_fingerprint: str  # the classic listener root, the pin target
    init_output: str
    serve_out: Path


def _printed(output: str, label: str) -> str:
    match = re.search(rf"^{label}:\s+([0-9a-f]{{64}})", output, re.MULTILINE)
    assert match, output
    return match.group(1)


@pytest.fixture(scope="module")
def pq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PqServer]:
    base = tmp_path_factory.mktemp("pq-default-root")
    data = base / "data"
    init = certfleet("init", "--key-type", "ml-dsa-65", "--data-dir", str(data))
    token = certfleet(
        "token", "create", "--team", "ops", "--scope", "admin", "--data-dir", str(data)
    ).stdout.strip()
    https_port, http_port = free_port(), free_port()
    out = base / "serve.out"
    argv = [
        CERTFLEET, "serve", "--workers", "1", "--data-dir", str(data),
        "--https", f"127.0.0.1:{https_port}", "--http", f"127.0.0.1:{http_port}",
    ]  # fmt: skip
    with out.open("wb") as stdout, (base / "serve.err").open("wb") as stderr:
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=clean_env())
    try:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while "certfleet API:" not in out.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"certfleet serve did not start: {(base / 'serve.err').read_text()}")
            time.sleep(0.05)
        yield PqServer(
            f"https://127.0.0.1:{https_port}",
            data,
            token,
            _printed(init.stdout, "Root SHA-256"),
            _printed(init.stdout, "TLS root SHA-256"),
            init.stdout,
            out,
        )
    finally:
        process.terminate()
        process.wait(timeout=20)


def _tls_root(server: PqServer) -> x509.Certificate:
    """The pin target from the unauthenticated bundle, kept only by its printed fingerprint."""
    pem = httpx.get(f"{server.url}/api/v1/agent/ca.pem", verify=False, trust_env=False).content
    roots = [c for c in load_certificates(pem) if fingerprint_sha256(c) == server.tls_fingerprint]
    assert roots, pem
    return roots[0]


def test_init_prints_both_roots_and_says_which_one_to_pin(pq_server: PqServer) -> None:
    assert pq_server.root_fingerprint != pq_server.tls_fingerprint
    assert "Pin the TLS root" in pq_server.init_output
    assert f"TLS root (pin):      sha256 {pq_server.tls_fingerprint}" in pq_server.serve_out.read_text()
    join = certfleet("agent", "token", "create", "--host", "h1", "--data-dir", str(pq_server.data_dir))
    assert f"--ca-fingerprint {pq_server.tls_fingerprint}" in join.stderr + join.stdout


def test_the_handshake_verifies_against_the_classic_tls_root(pq_server: PqServer) -> None:
    root = _tls_root(pq_server)
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    context = ssl.create_default_context(cadata=root.public_bytes(Encoding.PEM).decode())
    port = int(pq_server.url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() is not None


def test_rest_issues_an_ml_dsa_leaf_that_chains_to_the_ml_dsa_root(pq_server: PqServer) -> None:
    root = _tls_root(pq_server)
    context = ssl.create_default_context(cadata=root.public_bytes(Encoding.PEM).decode())
    response = httpx.post(
        f"{pq_server.url}/api/v1/certificates",
        json={"key_type": "ml-dsa-65", "sans": ["pq.example.test"]},
        headers={"Authorization": f"Bearer {pq_server.token}"},
        verify=context,
        trust_env=False,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    leaf = load_certificates(body["certificate_pem"].encode())[0]
    chain = load_certificates(body["chain_pem"].encode())
    assert isinstance(leaf.public_key(), mldsa.MLDSA65PublicKey)
    # The ML-DSA root, as the plain-HTTP listener and the trust-anchors endpoint give it.
    pq_roots = [
        r
        for r in load_certificates(_root_pem(pq_server))
        if fingerprint_sha256(r) == pq_server.root_fingerprint
    ]
    assert pq_roots
    verifier = PolicyBuilder().store(Store(pq_roots)).build_server_verifier(x509.DNSName("pq.example.test"))
    built = verifier.verify(leaf, chain)
    assert fingerprint_sha256(built[-1]) == pq_server.root_fingerprint


def _root_pem(server: PqServer) -> bytes:
    result = certfleet("ca", "root", "--data-dir", str(server.data_dir))
    return result.stdout.encode()


def test_login_pins_the_tls_root_and_refuses_another(pq_server: PqServer, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(pq_server.token)
    env = clean_env(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))

    def login(fingerprint: str) -> subprocess.CompletedProcess[str]:
        argv = [CERTFLEET, "login", pq_server.url, "--ca-fingerprint", fingerprint]
        return subprocess.run(
            [*argv, "--token-file", str(token_file)], capture_output=True, text=True, env=env, timeout=120
        )

    refused = login(pq_server.root_fingerprint)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "not the pinned one" in refused.stderr
    assert not (tmp_path / "config" / "certfleet").exists() or not any(
        (tmp_path / "config" / "certfleet").iterdir()
    )
    accepted = login(pq_server.tls_fingerprint)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    status = subprocess.run([CERTFLEET, "status"], capture_output=True, text=True, env=env, timeout=120)
    assert status.returncode == 0, status.stderr
    assert pq_server.url in status.stdout


def test_an_agent_pins_the_tls_root_and_deploys_a_leaf_of_the_ml_dsa_hierarchy(
    pq_server: PqServer, tmp_path: Path
) -> None:
    """Its own identity comes from the clientAuth CA under the TLS root (OpenSSL 3.0 could not
    present an ML-DSA-signed one); the ML-DSA root reaches it over the authenticated channel."""
    data = str(pq_server.data_dir)
    token = certfleet(
        "agent", "token", "create", "--host", "h1", "--team", "web", "--allow-names", "*.pq.test",
        "--data-dir", data,
    ).stdout.strip()  # fmt: skip
    state, out = tmp_path / "state", tmp_path / "out"
    out.mkdir()
    enrol = ["agent", "enroll", "--server", pq_server.url, "--token", token, "--state-dir", str(state)]
    refused = certfleet(*enrol, "--ca-fingerprint", pq_server.root_fingerprint, check=False)
    assert refused.returncode != 0 and not (state / "identity.pem").exists()
    certfleet(*enrol, "--ca-fingerprint", pq_server.tls_fingerprint)
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"server: {pq_server.url}\nallowed_dirs: [{out}]\ncertificates:\n  - name: app\n"
        f"    names: [app.pq.test]\n    files: {{key: {out}/app.key, fullchain: {out}/app.crt}}\n"
    )

    certfleet("agent", "run", "--once", "--config", str(config), "--state-dir", str(state))

    anchors = load_certificates((state / "trust-anchors.pem").read_bytes())
    assert pq_server.root_fingerprint in {fingerprint_sha256(c) for c in anchors}
    leaf, *chain = load_certificates((out / "app.crt").read_bytes())
    pq_root = [c for c in anchors if fingerprint_sha256(c) == pq_server.root_fingerprint]
    verifier = PolicyBuilder().store(Store(pq_root)).build_server_verifier(x509.DNSName("app.pq.test"))
    assert fingerprint_sha256(verifier.verify(leaf, chain)[-1]) == pq_server.root_fingerprint

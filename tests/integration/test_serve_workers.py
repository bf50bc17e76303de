"""``certfleet serve --workers 2`` as real processes: both workers serve, a worker that dies is
replaced, SIGTERM stops them all, and a revocation is seen at once by the OCSP responder of
every worker of every node (two nodes on one PostgreSQL).

Which worker answers is made certain, not left to the kernel: a worker stopped with SIGSTOP
accepts nothing, so while one is stopped the other answers every new connection."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import _pg_admin_url
from tests.integration.test_serve import CERTFLEET, Server, _env, certfleet

pytestmark = pytest.mark.integration

TIMEOUT = 60  # seconds: a loaded 2-core machine; no test waits on it


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def workers_of(server: Server) -> list[int]:
    assert server.process is not None
    found = children(server.process.pid)
    assert len(found) == 2, found
    return found


@contextlib.contextmanager
def only(worker: int, others: list[int]) -> Iterator[None]:
    """Every new connection goes to ``worker``: the others are stopped meanwhile. Only reads
    are made inside: a worker stopped in the middle of a write transaction (worker 0 runs the
    background jobs) would hold SQLite's write lock until it is continued."""
    stopped = [pid for pid in others if pid != worker]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


@dataclass
class Node:
    server: Server
    token: str
    root: Path
    ocsp_calls: int = 0

    def api(self) -> httpx.Client:
        trust = ssl.create_default_context(cafile=self.root)
        auth = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(verify=trust, headers=auth, timeout=TIMEOUT)

    def ocsp_requests_counted(self) -> float:
        """``certfleet_ocsp_requests`` (POST, 200) as /metrics on the HTTPS listener says."""
        with self.api() as api:
            response = api.get(f"{self.server.https}/metrics", headers={"Connection": "close"})
        assert response.status_code == 200, response.text
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == "certfleet_ocsp_requests_total" and sample.labels["method"] == "POST":
                    return sample.value
        return 0.0

    def issue(self, name: str) -> tuple[x509.Certificate, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        with httpx.Client(
            verify=ssl.create_default_context(cafile=self.root),
            headers={"Authorization": f"Bearer {self.token}"},
        ) as api:
            response = api.post(
                f"{self.server.https}/api/v1/certificates",
                json={"csr": csr.public_bytes(serialization.Encoding.PEM).decode(), "validity_days": 30},
            )
        assert response.status_code == 201, response.text
        body = response.json()
        leaf = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
        issuer = x509.load_pem_x509_certificates(body["chain_pem"].encode())[0]
        return leaf, issuer

    def revoke(self, leaf: x509.Certificate) -> None:
        with httpx.Client(
            verify=ssl.create_default_context(cafile=self.root),
            headers={"Authorization": f"Bearer {self.token}"},
        ) as api:
            response = api.post(
                f"{self.server.https}/api/v1/certificates/{leaf.serial_number:x}/revoke",
                json={"reason": "keyCompromise"},
            )
        assert response.status_code == 200, response.text

    def ocsp_status(self, leaf: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
        request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
        # A new connection per request: it goes to whichever worker is not stopped.
        response = httpx.post(
            f"{self.server.http}/ocsp",
            content=request.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/ocsp-request", "Connection": "close"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        self.ocsp_calls += 1
        answer = ocsp.load_der_ocsp_response(response.content)
        assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        return answer.certificate_status


def start_node(data_dir: Path, extra: list[str] | None = None) -> Node:
    server = Server(data_dir, extra=["--workers", "2", *(extra or [])])
    server.start()
    token = certfleet(
        "token", "create", "--team", "ops", "--scope", "admin", *(extra or []), "--data-dir", str(data_dir)
    )
    return Node(
        server, token.stdout.strip(), server.root_pem(data_dir.parent / f"root-{server.https_port}.pem")
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data_dir = tmp_path_factory.mktemp("workers") / "data"
    certfleet("init", "--data-dir", str(data_dir))
    started = start_node(data_dir)
    yield started
    if started.server.process is not None and started.server.process.poll() is None:
        started.server.stop()


def test_every_worker_sees_a_revocation_at_once(node: Node) -> None:
    workers = workers_of(node.server)
    leaf, issuer = node.issue("both.workers.example.test")
    for worker in workers:  # each worker answers (and may cache) "good" first
        with only(worker, workers):
            assert node.ocsp_status(leaf, issuer) == ocsp.OCSPCertStatus.GOOD
    node.revoke(leaf)
    for worker in workers:
        with only(worker, workers):
            assert node.ocsp_status(leaf, issuer) == ocsp.OCSPCertStatus.REVOKED


def test_metrics_from_any_worker_count_every_worker(node: Node) -> None:
    workers = workers_of(node.server)
    leaf, issuer = node.issue("counted.example.test")
    for worker in workers:
        with only(worker, workers):
            node.ocsp_status(leaf, issuer)
    for worker in workers:
        with only(worker, workers):
            assert node.ocsp_requests_counted() == node.ocsp_calls


def test_the_https_api_answers_from_every_worker(node: Node) -> None:
    leaf, _ = node.issue("read.example.test")  # writes happen with no worker stopped (see only())
    workers = workers_of(node.server)
    for worker in workers:
        with only(worker, workers), node.api() as api:
            response = api.get(
                f"{node.server.https}/api/v1/certificates/{leaf.serial_number:x}",
                headers={"Connection": "close"},
            )
        assert response.status_code == 200, response.text
        assert response.json()["common_name"] == "read.example.test"


def mapped_files(pid: int) -> set[str]:
    """The files (shared objects above all) mapped into ``pid``'s memory."""
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {line.split(maxsplit=5)[5] for line in lines if len(line.split(maxsplit=5)) == 6}


# Compiled extensions the application loads (pydantic_core for FastAPI, SQLAlchemy's, the
# cryptography bindings, uvloop and httptools for serving).
APPLICATION_EXTENSIONS = ("pydantic_core", "sqlalchemy", "cryptography", "uvloop", "httptools")


def test_the_supervisor_never_loads_the_application_and_the_workers_do(node: Node) -> None:
    assert node.server.process is not None
    supervisor = mapped_files(node.server.process.pid)
    loaded = sorted(f for f in supervisor if any(name in f for name in APPLICATION_EXTENSIONS))
    assert loaded == []
    for worker in workers_of(node.server):  # the same check sees them where they are loaded
        assert any("pydantic_core" in f for f in mapped_files(worker))
        assert any("uvloop" in f for f in mapped_files(worker))


def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(node: Node) -> None:
    before = workers_of(node.server)
    os.kill(before[0], signal.SIGKILL)
    # The supervisor replaces it; the replacement serves (the other worker is stopped).
    deadline = time.monotonic() + 60
    while True:
        after = children(node.server.process.pid)  # type: ignore[union-attr]
        if len(after) == 2 and before[0] not in after:
            break
        assert time.monotonic() < deadline, f"no replacement for worker {before[0]}: {after}"
        time.sleep(0.05)  # polling the process table, not standing in for it
    replacement = next(pid for pid in after if pid != before[1])
    leaf, issuer = node.issue("replacement.example.test")
    with only(replacement, after):
        assert node.ocsp_status(leaf, issuer) == ocsp.OCSPCertStatus.GOOD
    assert node.server.stop() == 0
    for pid in after:  # reaped by the supervisor before it exited
        assert not Path(f"/proc/{pid}").exists()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A database of its own: two nodes hold connections to it for the whole module."""
    base = _pg_admin_url()
    name = f"certfleet_nodes_{secrets.token_hex(4)}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_nodes_on_postgresql_see_a_revocation_in_every_worker(tmp_path: Path, postgres_url: str) -> None:
    first_dir = tmp_path / "a" / "data"
    certfleet("init", "--data-dir", str(first_dir), "--db", postgres_url)
    db = ["--db", postgres_url]
    a = start_node(first_dir, db)
    second_dir = tmp_path / "b" / "data"
    # The second node: the same CA keys (the server-identity CA's included, made by the first
    # start) and the same database.
    shutil.copytree(first_dir, second_dir, ignore=shutil.ignore_patterns("*.log"))
    b = start_node(second_dir, db)
    try:
        leaf, issuer = a.issue("two.nodes.example.test")
        everywhere = [(n, w) for n in (a, b) for w in workers_of(n.server)]
        for n, worker in everywhere:
            with only(worker, workers_of(n.server)):
                assert n.ocsp_status(leaf, issuer) == ocsp.OCSPCertStatus.GOOD
        a.revoke(leaf)
        for n, worker in everywhere:
            with only(worker, workers_of(n.server)):
                assert n.ocsp_status(leaf, issuer) == ocsp.OCSPCertStatus.REVOKED
    finally:
        for n in (a, b):
            if n.server.process is not None and n.server.process.poll() is None:
                n.server.stop()


def serve_until_it_exits(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``serve --workers 2`` on free ports, for a start that must fail."""
    server = Server(data_dir)
    return subprocess.run(
        [
            CERTFLEET,
            "serve",
            "--https",
            f"127.0.0.1:{server.https_port}",
            "--http",
            f"127.0.0.1:{server.http_port}",
            "--workers",
            "2",
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_env(),
    )


def test_a_first_start_refusal_is_one_line_and_starts_no_worker(tmp_path: Path) -> None:
    # The first start's work runs in a child of the CLI: its refusal still reads as the CLI's.
    data_dir = tmp_path / "data"
    certfleet("init", "--data-dir", str(data_dir))
    result = serve_until_it_exits(data_dir, "--server-name", "bad name!")
    assert result.returncode == 2
    assert result.stderr == "error: name 'bad name!' has illegal characters in label 'bad name!'\n"
    assert result.stdout == ""


def test_a_worker_that_cannot_start_stops_the_node_with_its_reason(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    certfleet("init", "--data-dir", str(data_dir))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (data_dir / "config.toml").write_text(f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
        result = serve_until_it_exits(data_dir)
    assert result.returncode != 0
    assert "cannot start the metrics listener" in result.stderr
    assert "worker 0 exited" in result.stderr
    assert "Traceback" not in result.stderr

"""What the fault tests share: a ``certfleet serve`` started with test-only variables, a
database of its own, REST issuance load from several threads, and reading back what the CA
reserved and recorded."""

from __future__ import annotations

import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, text

from tests.conftest import _pg_admin_url
from tests.integration.test_serve import CERTFLEET, START_DEADLINE_SECONDS, Server, _env, certfleet

__all__ = [
    "IssuanceLoad",
    "LedgerState",
    "TestServer",
    "fresh_postgres_database",
    "ledger_state",
    "make_csr_pem",
    "prepare_data_dir",
]


@dataclass
class TestServer(Server):
    """A ``serve`` with extra environment (the test-only fault variables) and one process,
    so a fault's ``kill -9`` kills the server itself."""

    __test__ = False
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.starts += 1
        argv = [
            CERTFLEET,
            "serve",
            "--https",
            f"127.0.0.1:{self.https_port}",
            "--http",
            f"127.0.0.1:{self.http_port}",
            "--data-dir",
            str(self.data_dir),
            "--workers",
            "1",
            *self.extra,
        ]
        with self._log("out").open("wb") as out, self._log("err").open("wb") as err:
            self.process = subprocess.Popen(argv, stdout=out, stderr=err, env={**_env(), **self.env})
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while "certfleet API:" not in self.stdout:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}: {self.stderr}")
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"serve not ready after {START_DEADLINE_SECONDS} s: {self.stderr}")
            time.sleep(0.05)

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """An empty database of its own on the shared test PostgreSQL (dropped afterwards)."""
    base = _pg_admin_url()
    name = f"certfleet_faults_{secrets.token_hex(4)}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_data_dir(data_dir: Path, database_url: str | None) -> tuple[str, str]:
    """``certfleet init`` (on ``database_url`` when given: every later command reads it from
    config.toml), then an admin token. Returns the token and the database URL."""
    data_dir.mkdir(parents=True, mode=0o700)
    if database_url is not None:
        (data_dir / "config.toml").write_text(f'database_url = "{database_url}"\n')
    certfleet("init", "--data-dir", str(data_dir))
    token = certfleet("token", "create", "--team", "ops", "--scope", "admin", "--data-dir", str(data_dir))
    url = database_url or f"sqlite:///{data_dir / 'certfleet.db'}"
    return token.stdout.strip(), url


_KEY = ec.generate_private_key(ec.SECP256R1())


def make_csr_pem(name: str) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(_KEY, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class IssuanceLoad:
    """``threads`` clients issuing over REST until stopped or the server goes away. Every
    answer is kept: serials of 201s, the status and body of anything else."""

    base_url: str
    token: str
    threads: int = 4
    # Longer than any bounded wait on the server (SQLite's 30 s busy timeout and the queue
    # behind it): a client that gave up first would never see the server's answer.
    timeout_seconds: float = 150
    issued: list[str] = field(default_factory=list)
    failures: list[tuple[int, str, str]] = field(default_factory=list)  # status, content type, body
    connection_errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._workers = [threading.Thread(target=self._run, args=(i,)) for i in range(self.threads)]
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)
            assert not worker.is_alive(), "a load thread did not finish"

    def _run(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(verify=False, headers=headers, timeout=self.timeout_seconds) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                name = f"t{index}-{n}-{secrets.token_hex(3)}.example.test"
                try:
                    response = client.post(
                        f"{self.base_url}/api/v1/certificates",
                        json={"csr": make_csr_pem(name), "validity_days": 30},
                    )
                except httpx.TransportError:
                    with self._lock:
                        self.connection_errors += 1
                    if self._stop.wait(0.05):
                        return
                    continue
                with self._lock:
                    if response.status_code == 201:
                        self.issued.append(response.json()["certificate"]["serial"])
                    else:
                        self.failures.append(
                            (response.status_code, response.headers.get("content-type", ""), response.text)
                        )


@dataclass(frozen=True)
class LedgerState:
    """What the database says the CA reserved (``serials``) and recorded (``certificates``)."""

    serial_states: dict[str, str]
    certificates: dict[str, str]  # serial -> status

    @property
    def reserved_only(self) -> set[str]:
        return {s for s, state in self.serial_states.items() if state == "reserved"} - set(self.certificates)


def ledger_state(database_url: str) -> LedgerState:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            serials = {str(s): str(st) for s, st in conn.execute(text("SELECT serial, state FROM serials"))}
            certs = {
                str(s): str(st) for s, st in conn.execute(text("SELECT serial, status FROM certificates"))
            }
    finally:
        engine.dispose()
    return LedgerState(serials, certs)

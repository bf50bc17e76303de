"""A rolling upgrade on PostgreSQL: the PREVIOUS version of certfleet (this repository as it
was just before its newest migration was added, taken from git) serves REST issuance and OCSP
under load while this version's ``certfleet db upgrade`` migrates the database from another
process. No request fails, the old server keeps serving afterwards, and the database ends at
this version's heads. What makes it hold: migrations only expand the schema
(src/certfleet/store/migrations/README.md), ``db upgrade`` takes an advisory lock and gives
up a table lock it waits for longer than its lock_timeout (then retries)."""

from __future__ import annotations

import compileall
import json
import secrets
import signal
import ssl
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from certfleet.store import Database
from tests.api.conftest import make_csr
from tests.conftest import _pg_admin_url
from tests.integration.test_serve import CERTFLEET, _env
from tests.ports import free_port

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]
VERSIONS = "src/certfleet/store/migrations/versions"
TIMEOUT = 60  # a deadline on a loaded machine, never a wait


def _git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(REPOSITORY), *args], capture_output=True, check=True).stdout


def previous_version(into: Path) -> Path:
    """The source tree as it was just before the newest migration file was added: the
    newest earlier commit whose sources compile (several people commit to main at once, and
    a commit may hold a half-made file another one completes)."""
    try:
        if _git("rev-parse", "--is-shallow-repository").strip() == b"true":
            # A CI checkout may be shallow: fetch the history this test needs (best effort).
            subprocess.run(
                ["git", "-C", str(REPOSITORY), "fetch", "-q", "--unshallow"], capture_output=True, timeout=120
            )
        newest = _git("log", "--diff-filter=A", "-1", "--format=%H", "--", VERSIONS).decode().strip()
        shallow = _git("rev-parse", "--is-shallow-repository").strip() == b"true"
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no git history to take the previous version from: {exc}")
    if not newest or shallow:
        pytest.skip("a shallow clone: the previous version is not in it")
    for commit in _git("rev-list", "--max-count=20", f"{newest}~1").decode().split():
        tree = into / commit
        with tarfile.open(fileobj=BytesIO(_git("archive", "--format=tar", commit, "src"))) as tar:
            tar.extractall(tree, filter="data")
        if compileall.compile_dir(tree / "src", quiet=2):
            return tree / "src"
    pytest.fail(f"no commit before {newest} whose sources compile")


def _old(source: Path, *args: str) -> list[str]:
    """``certfleet ARGS`` run by the previous version (its package first on the path)."""
    return [sys.executable, "-c", "from certfleet.cli.main import run; run()", *args]


def _old_env(source: Path) -> dict[str, str]:
    return {**_env(), "PYTHONPATH": str(source)}


@dataclass
class OldServer:
    source: Path
    data_dir: Path
    url: str
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = _old(self.source, "serve", "--https", f"127.0.0.1:{self.https_port}")
        argv += ["--http", f"127.0.0.1:{self.http_port}", "--workers", "1"]
        argv += ["--data-dir", str(self.data_dir), "--db", self.url]
        out = self.data_dir.parent / "old-serve.out"
        with out.open("wb") as stdout, (self.data_dir.parent / "old-serve.err").open("wb") as stderr:
            self.process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=_old_env(self.source))
        deadline = time.monotonic() + TIMEOUT
        while "certfleet API:" not in out.read_text():
            assert self.process.poll() is None, (self.data_dir.parent / "old-serve.err").read_text()
            assert time.monotonic() < deadline, "the old version did not start"
            time.sleep(0.05)


@pytest.fixture
def database_url() -> Iterator[str]:
    base = _pg_admin_url()
    name = f"certfleet_rolling_{secrets.token_hex(4)}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Traffic:
    """Issuance and OCSP against one server from two threads until stopped; every answer
    that is not 201 (issuance) or a successful OCSP response is a failure, as is no answer."""

    https: str
    http: str
    root: Path
    token: str
    done: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def issue(self, name: str) -> tuple[x509.Certificate, x509.Certificate] | None:
        pem = make_csr((name,), common_name=name)
        with httpx.Client(
            verify=ssl.create_default_context(cafile=self.root),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=TIMEOUT,
        ) as api:
            response = api.post(
                f"{self.https}/api/v1/certificates",
                json={"csr": pem, "validity_days": 30},
            )
        if response.status_code != 201:
            self.failures.append(f"issue {response.status_code}: {response.text[:200]}")
            return None
        self.done["issue"] += 1
        body = response.json()
        return (
            x509.load_pem_x509_certificate(body["certificate_pem"].encode()),
            x509.load_pem_x509_certificates(body["chain_pem"].encode())[0],
        )

    def check(self, leaf: x509.Certificate, issuer: x509.Certificate) -> None:
        request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
        response = httpx.post(
            f"{self.http}/ocsp",
            content=request.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
            timeout=TIMEOUT,
        )
        answer = ocsp.load_der_ocsp_response(response.content) if response.status_code == 200 else None
        if answer is None or answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            self.failures.append(f"ocsp {response.status_code}")
            return
        if answer.certificate_status != ocsp.OCSPCertStatus.GOOD:
            self.failures.append(f"ocsp says {answer.certificate_status}")
            return
        self.done["ocsp"] += 1

    def _run(self, worker: int) -> None:
        index = 0
        while not self._stop.is_set():
            index += 1
            try:
                issued = self.issue(f"w{worker}-{index}.rolling.example.test")
                if issued is not None:
                    self.check(*issued)
            except httpx.HTTPError as exc:
                self.failures.append(f"no answer: {type(exc).__name__}: {exc}")

    def __enter__(self) -> Traffic:
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(2)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(TIMEOUT)


def _revisions(url: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    database = Database(url)
    try:
        return database.current_revisions(), database.head_revisions()
    finally:
        database.dispose()


def test_the_previous_version_keeps_serving_while_this_one_migrates(
    tmp_path: Path, database_url: str
) -> None:
    source = previous_version(tmp_path / "previous")
    data_dir = tmp_path / "data"
    env = _old_env(source)
    run = {"capture_output": True, "text": True, "timeout": 120, "check": False}
    init = subprocess.run(
        _old(source, "init", "--data-dir", str(data_dir), "--db", database_url), env=env, **run
    )  # type: ignore[call-overload]
    assert init.returncode == 0, init.stderr
    old = OldServer(source, data_dir, database_url)
    old.start()
    try:
        before, heads = _revisions(database_url)
        assert set(before) != set(heads), (
            "the previous version is at this version's heads: nothing to migrate"
        )
        token = subprocess.run(
            _old(
                source,
                "token",
                "create",
                "--team",
                "ops",
                "--scope",
                "admin",
                "--data-dir",
                str(data_dir),
                "--db",
                database_url,
            ),
            env=env,
            **run,  # type: ignore[call-overload]
        ).stdout.strip()
        root = tmp_path / "root.pem"
        root.write_bytes(httpx.get(f"http://127.0.0.1:{old.http_port}/ca/root.pem").content)
        traffic = Traffic(
            f"https://127.0.0.1:{old.https_port}", f"http://127.0.0.1:{old.http_port}", root, token
        )
        with traffic:
            deadline = time.monotonic() + TIMEOUT
            while traffic.done["ocsp"] < 5:  # load is flowing before the migration starts
                assert time.monotonic() < deadline and not traffic.failures, traffic.failures
                time.sleep(0.05)
            served_before = sum(traffic.done.values())
            upgrade = subprocess.run(
                [CERTFLEET, "db", "upgrade", "--data-dir", str(data_dir), "--db", database_url],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                env=_env(),
            )
            served_during = sum(traffic.done.values()) - served_before
            deadline = time.monotonic() + TIMEOUT
            while sum(traffic.done.values()) < served_before + served_during + 10:  # and after it
                assert time.monotonic() < deadline, "no traffic served after the upgrade"
                time.sleep(0.05)
        assert upgrade.returncode == 0, upgrade.stderr
        assert upgrade.stdout.startswith("applied ")
        assert traffic.failures == []
        assert old.process is not None and old.process.poll() is None  # still serving
        after, heads = _revisions(database_url)
        assert set(after) == set(heads)
        check = subprocess.run(
            [CERTFLEET, "db", "check", "--format", "json", "--data-dir", str(data_dir), "--db", database_url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=_env(),
        )
        assert json.loads(check.stdout)["schema"]["pending"] == []
    finally:
        if old.process is not None and old.process.poll() is None:
            old.process.send_signal(signal.SIGTERM)
            old.process.wait(TIMEOUT)
    assert old.process.returncode == 0

"""``certfleet serve`` as a real process: HTTP CA material, the HTTPS API verified against the
served root, issuance with curl checked by openssl, the listener certificate's life cycle, the
first-start admin token, and a clean exit on SIGTERM. Server starts are few and shared."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from certfleet.config import load_settings
from certfleet.services.server_identity import ensure_server_identity
from tests.conftest import FakeClock, make_platform
from tests.ports import free_port

pytestmark = pytest.mark.integration

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))
START_DEADLINE_SECONDS = 60
STOP_DEADLINE_SECONDS = 20
TOKEN_LINE = re.compile(r"Admin API token \(shown once\): (cf_\S+)")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}


def certfleet(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [CERTFLEET, *args], capture_output=True, text=True, env=_env(), check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


@dataclass
class Server:
    """One ``certfleet serve`` process; output goes to files so no pipe can fill and block it."""

    data_dir: Path
    extra: list[str] = field(default_factory=list)
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _log(self, stream: str) -> Path:
        return self.data_dir.parent / f"serve-{self.starts}.{stream}"

    @property
    def stdout(self) -> str:
        return self._log("out").read_text()

    @property
    def stderr(self) -> str:
        return self._log("err").read_text()

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
            *self.extra,
        ]
        with self._log("out").open("wb") as out, self._log("err").open("wb") as err:
            self.process = subprocess.Popen(argv, stdout=out, stderr=err, env=_env())
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        # The URL lines are printed only once both listeners accept connections.
        while "certfleet API:" not in self.stdout:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}: {self.stderr}")
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"serve not ready after {START_DEADLINE_SECONDS} s: {self.stderr}")
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, then the exit status (the test fails if it does not come promptly)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"serve ignored SIGTERM for {STOP_DEADLINE_SECONDS} s")

    def root_pem(self, into: Path) -> Path:
        response = httpx.get(f"{self.http}/ca/root.pem")
        assert response.status_code == 200
        into.write_bytes(response.content)
        return into

    def presented_certificate(self) -> x509.Certificate:
        pem = ssl.get_server_certificate(("127.0.0.1", self.https_port))
        return x509.load_pem_x509_certificate(pem.encode())


def san_values(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def verify_with_openssl(workdir: Path, root: Path, issued: dict[str, str]) -> None:
    (workdir / "cert.pem").write_text(issued["certificate_pem"])
    (workdir / "chain.pem").write_text(issued["chain_pem"])
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(root),
            "-untrusted",
            str(workdir / "chain.pem"),
            str(workdir / "cert.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("cert.pem: OK")


@dataclass
class Served:
    server: Server
    names: list[str]
    prepared: x509.Certificate
    admin_token: str
    root: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``init``, then an old listener certificate near its end, then ``serve``."""
    base = tmp_path_factory.mktemp("serve")
    data_dir = base / "data"
    certfleet("init", "--data-dir", str(data_dir))
    settings = load_settings({}, data_dir=data_dir)
    # 70 days into a 90-day certificate: inside the last third, so the start must replace it.
    then = FakeClock(dt.datetime.now(dt.UTC) - dt.timedelta(days=70))
    platform = make_platform(data_dir, settings.database_url, then)
    try:
        old = ensure_server_identity(
            platform.issuance,
            settings.data_dir.tls,
            ("cf.example.test",),
            settings.passphrase_file.read_bytes().strip(),
            then,
        )
    finally:
        platform.close()
    prepared = x509.load_pem_x509_certificates(old.certificate_file.read_bytes())[0]
    # One process here (listeners and jobs together), as in every suite that does not test
    # workers: tests/integration/test_serve_workers.py, test_est_clients.py and the SCEP
    # server (scep_serve.py) run several.
    server = Server(data_dir, extra=["--server-name", "cf.example.test", "--workers", "1"])
    server.start()
    token = certfleet("token", "create", "--team", "ops", "--scope", "admin", "--data-dir", str(data_dir))
    served = Served(
        server,
        ["cf.example.test"],
        prepared,
        token.stdout.strip(),
        server.root_pem(base / "root.pem"),
    )
    yield served
    if server.process is not None and server.process.poll() is None:
        server.stop()


def test_root_over_http_then_the_api_over_https_verified_against_it(served: Served) -> None:
    trust = ssl.create_default_context(cafile=str(served.root))
    root = x509.load_pem_x509_certificate(served.root.read_bytes())
    assert root.subject == root.issuer  # the self-signed root, not the issuing CA

    with httpx.Client(verify=trust) as client:
        assert client.get(f"{served.server.https}/healthz").text == "ok\n"
        by_name = client.get(f"https://localhost:{served.server.https_port}/api/v1/openapi.json")
        assert by_name.json()["info"]["title"] == "certfleet"
        unauthenticated = client.get(f"{served.server.https}/api/v1/certificates")
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"] == "application/problem+json"
        listed = client.get(
            f"{served.server.https}/api/v1/certificates",
            headers={"Authorization": f"Bearer {served.admin_token}"},
        )
        assert listed.status_code == 200
    # The system trust store does not know our root: the check above really verified.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{served.server.https}/healthz", verify=ssl.create_default_context())


def test_listener_certificate_names_and_replacement_of_the_old_one(served: Served) -> None:
    presented = served.server.presented_certificate()

    assert san_values(presented) == {"localhost", "127.0.0.1", "::1", *served.names}
    # Same names as the prepared certificate, which had under a third of its life left: the
    # start replaced it because of its age alone.
    prepared = served.prepared
    assert san_values(prepared) == {"localhost", "127.0.0.1", "::1", "cf.example.test"}
    prepared_life = prepared.not_valid_after_utc - prepared.not_valid_before_utc
    assert prepared.not_valid_after_utc - dt.datetime.now(dt.UTC) < prepared_life / 3
    assert presented.serial_number != prepared.serial_number
    left = presented.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert left > dt.timedelta(days=80)
    on_disk = x509.load_pem_x509_certificates((served.server.data_dir / "tls" / "server.crt").read_bytes())
    assert on_disk[0] == presented


def test_issue_with_curl_and_verify_with_openssl(served: Served, tmp_path: Path) -> None:
    token = certfleet(
        "token",
        "create",
        "--team",
        "web",
        "--scope",
        "issue",
        "--allow-names",
        "*.web.example.test",
        "--data-dir",
        str(served.server.data_dir),
    ).stdout.strip()
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-subj",
            "/CN=www.web.example.test",
            "-addext",
            "subjectAltName=DNS:www.web.example.test",
            "-out",
            str(tmp_path / "csr.pem"),
        ],
        check=True,
        capture_output=True,
    )
    body = {"csr": (tmp_path / "csr.pem").read_text(), "validity_days": 30}
    (tmp_path / "body.json").write_text(json.dumps(body))

    def curl(*args: str) -> tuple[int, str]:
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "--cacert",
                str(served.root),
                "-o",
                str(tmp_path / "out.json"),
                "-w",
                "%{http_code}",
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout), (tmp_path / "out.json").read_text()

    status, text = curl(
        "-H",
        f"Authorization: Bearer {token}",
        "-H",
        "Content-Type: application/json",
        "--data",
        f"@{tmp_path / 'body.json'}",
        f"https://localhost:{served.server.https_port}/api/v1/certificates",
    )

    assert status == 201, text
    issued = json.loads(text)
    verify_with_openssl(tmp_path, served.root, issued)
    cert_key = subprocess.run(
        ["openssl", "x509", "-noout", "-pubkey", "-in", str(tmp_path / "cert.pem")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    own_key = subprocess.run(
        ["openssl", "pkey", "-pubout", "-in", str(tmp_path / "key.pem")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert cert_key == own_key
    serial = issued["certificate"]["serial"]
    status, text = curl(
        "-H", f"Authorization: Bearer {token}", f"{served.server.https}/api/v1/certificates/{serial}"
    )
    assert status == 200 and json.loads(text)["team"] == "web"
    status, text = curl(
        "-H",
        f"Authorization: Bearer {token}",
        "-H",
        "Content-Type: application/json",
        "--data",
        json.dumps({"key_type": "ec-p256", "sans": ["www.other.test"]}),
        f"{served.server.https}/api/v1/certificates",
    )
    assert status == 403 and "www.other.test" in json.loads(text)["detail"]


def test_sigterm_exits_cleanly_and_a_restart_reuses_or_reissues_the_certificate(served: Served) -> None:
    server = served.server
    before = server.presented_certificate()
    trust = ssl.create_default_context(cafile=str(served.root))
    with httpx.Client(verify=trust) as idle:
        assert idle.get(f"{server.https}/healthz").status_code == 200  # a kept-alive connection

        assert server.stop() == 0
    assert "Traceback" not in server.stderr

    server.start()  # same names, certificate far from its end
    assert server.presented_certificate() == before
    assert "Admin API token" not in server.stdout

    assert server.stop() == 0
    server.extra = [*server.extra, "--server-name", "cf2.example.test"]
    served.names.append("cf2.example.test")
    server.start()
    after = server.presented_certificate()
    assert after.serial_number != before.serial_number
    assert san_values(after) == {"localhost", "127.0.0.1", "::1", "cf.example.test", "cf2.example.test"}


def test_serve_init_prints_urls_and_a_token_on_first_start_only(
    data_dir: Path, db_url: str, tmp_path: Path
) -> None:
    server = Server(data_dir, extra=["--init", "--db", db_url, "--workers", "1"])
    server.start()
    try:
        first = server.stdout
        assert f"{server.https}/api/v1/" in first
        assert f"{server.http}/ca/root.pem" in first
        tokens = TOKEN_LINE.findall(first)
        assert len(tokens) == 1
        root = server.root_pem(tmp_path / "root.pem")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(root))) as client:
            issued = client.post(
                f"{server.https}/api/v1/certificates",
                headers={"Authorization": f"Bearer {tokens[0]}"},
                json={"key_type": "ec-p256", "sans": ["first.example.test"]},
            )
        assert issued.status_code == 201, issued.text
        verify_with_openssl(tmp_path, root, issued.json())
    finally:
        assert server.stop() == 0

    server.start()
    try:
        assert f"{server.https}/api/v1/" in server.stdout
        assert "token" not in server.stdout.lower()
        assert "cf_" not in server.stdout
        with httpx.Client(verify=ssl.create_default_context(cafile=str(root))) as client:
            again = client.get(
                f"{server.https}/api/v1/certificates", headers={"Authorization": f"Bearer {tokens[0]}"}
            )
        assert [c["sans"] for c in again.json()["items"]][-1] == ["first.example.test"]
    finally:
        assert server.stop() == 0

"""Real peers the ACME tests drive: pebble-challtestsrv as the DNS server, a tiny HTTP server
answering http-01, a TLS-ALPN responder, and a JWS signer for hand-crafted requests."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from tests.ports import free_port

ACME_IDENTIFIER_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.31")


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class ChallTestSrv:
    """pebble-challtestsrv as a programmable DNS server: every A query answers 127.0.0.1;
    TXT and CAA records come from its management API."""

    def __init__(self) -> None:
        self.dns_port = free_port()
        self.mgmt_port = free_port()
        binary = shutil.which("pebble-challtestsrv")
        assert binary, "pebble-challtestsrv is not installed (Debian package pebble)"
        self._proc = subprocess.Popen(
            [
                binary,
                "-dns01",
                f"127.0.0.1:{self.dns_port}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                f"127.0.0.1:{self.mgmt_port}",
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._ready, what="pebble-challtestsrv management port")

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=0.2):
                return True
        except OSError:
            return False

    def _post(self, path: str, body: dict[str, Any]) -> None:
        response = httpx.post(f"http://127.0.0.1:{self.mgmt_port}{path}", json=body, timeout=5)
        response.raise_for_status()

    def set_txt(self, host: str, value: str) -> None:
        self._post("/set-txt", {"host": host.rstrip(".") + ".", "value": value})

    def clear_txt(self, host: str) -> None:
        self._post("/clear-txt", {"host": host.rstrip(".") + "."})

    def add_caa(self, host: str, policies: list[dict[str, str]]) -> None:
        self._post("/add-caa", {"host": host.rstrip(".") + ".", "policies": policies})

    def clear_caa(self, host: str) -> None:
        self._post("/clear-caa", {"host": host.rstrip(".") + "."})

    def set_servfail(self, host: str) -> None:
        self._post("/set-servfail", {"host": host.rstrip(".") + "."})

    def clear_servfail(self, host: str) -> None:
        self._post("/clear-servfail", {"host": host.rstrip(".") + "."})

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)


class Http01Responder:
    """Answers ``/.well-known/acme-challenge/TOKEN`` with whatever a test put in ``tokens``;
    ``connections`` counts the TCP connections it accepted."""

    def __init__(self) -> None:
        tokens: dict[str, str] = {}
        self.tokens = tokens

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.path.rsplit("/", 1)[-1]
                body = tokens.get(token)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        responder = self

        class Server(ThreadingHTTPServer):
            def verify_request(self, request: Any, client_address: Any) -> bool:
                responder.connections += 1  # every accepted TCP connection, answered or not
                return True

        self.connections = 0
        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def tls_alpn_certificate(name: str, key_authorization: str) -> tuple[bytes, bytes]:
    """An RFC 8737 validation certificate (PEM) and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(key_authorization.encode()).digest()
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-tls-alpn")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, b"\x04\x20" + digest), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@contextmanager
def tls_alpn_responder(port: int, cert_pem: bytes, key_pem: bytes, tmp: Path) -> Iterator[None]:
    """Serve one validation certificate for ALPN acme-tls/1 on 127.0.0.1:port."""
    (tmp / "alpn.crt").write_bytes(cert_pem)
    (tmp / "alpn.key").write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "alpn.crt", tmp / "alpn.key")
    context.set_alpn_protocols(["acme-tls/1"])
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def json_dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"


def _bin(name: str) -> str:
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    assert found, f"{name} is not installed"
    return found


class CertfleetServe:
    """A real ``certfleet serve`` (HTTPS API with the ACME router) in its own process."""

    def __init__(
        self,
        tmp: Path,
        dns: ChallTestSrv,
        *,
        http01_port: int,
        tlsalpn01_port: int,
        db_url: str | None = None,
        acme_config: str = "",
    ) -> None:
        self.data_dir = tmp / "data"
        self.db_url = db_url
        self.https_port = free_port()
        self.http_port = free_port()
        result = self.cli("init")
        assert result.returncode == 0, result.stderr
        # Retry-After 0: certbot re-checks ARI on every run, so the tests can observe an override.
        (self.data_dir / "config.toml").write_text(
            "[acme]\nari_retry_after_seconds = 0\nvalidation_timeout_seconds = 5\n" + acme_config
        )
        self.root_pem = tmp / "root.pem"
        self.root_pem.write_text(self.cli("ca", "root").stdout)
        self._log = (tmp / "serve.log").open("w")
        self._proc = subprocess.Popen(
            [
                _bin("certfleet"),
                "serve",
                "--https",
                f"127.0.0.1:{self.https_port}",
                "--http",
                f"127.0.0.1:{self.http_port}",
                "--acme-resolver",
                dns.resolver,
                "--acme-http01-port",
                str(http01_port),
                "--acme-tlsalpn01-port",
                str(tlsalpn01_port),
                *self._db_args(),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._up, timeout=60, what="certfleet serve")

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/acme/directory"

    def _db_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.db_url:
            args += ["--db", self.db_url]
        return args

    def _up(self) -> bool:
        assert self._proc.poll() is None, "certfleet serve exited"
        try:
            context = ssl.create_default_context(cafile=str(self.root_pem))
            return httpx.get(self.directory_url, verify=context, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_bin("certfleet"), *args, *self._db_args()],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def inventory(self, serial: str) -> dict[str, Any]:
        result = self.cli("inventory", "show", serial, "--format", "json")
        assert result.returncode == 0, result.stderr
        record: dict[str, Any] = json.loads(result.stdout)
        return record

    def eab(self, team: str, *allow_names: str) -> tuple[str, str]:
        args = ["acme", "eab", "create", "--team", team]
        for pattern in allow_names:
            args += ["--allow-names", pattern]
        result = self.cli(*args)
        assert result.returncode == 0, result.stderr
        fields = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
        return fields["kid"], fields["hmac_key"]

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=30)
        self._log.close()


def openssl_verify(root_pem: Path, cert_pem: Path, chain_pem: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(root_pem), "-untrusted", str(chain_pem), str(cert_pem)],
        capture_output=True,
        text=True,
        check=False,
    )


def serial_of(cert_pem: Path) -> str:
    cert = x509.load_pem_x509_certificates(cert_pem.read_bytes())[0]
    return format(cert.serial_number, "x")

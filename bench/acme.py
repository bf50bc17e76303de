"""End-to-end ACME issuance throughput: certfleet (SQLite, PostgreSQL) against pebble.

One Python client harness drives every server the same way: per certificate a new order, the
http-01 challenge (answered by an in-process responder), polling the authorization itself every
10 ms (the ``acme`` library waits at least 1 s per order), finalize, poll the order, download.
Accounts are created before the clock starts. Run at concurrency 1 and 8 (threads, one
kept-alive HTTPS connection each). pebble runs with PEBBLE_VA_NOSLEEP=1 and
PEBBLE_WFE_NONCEREJECT=0; DNS for both comes from pebble-challtestsrv (every name: 127.0.0.1).

Each row also shows the server's CPU per certificate: user + system time of the server's
processes (``certfleet serve``'s supervisor and workers, or pebble) read from /proc before and
after the run, so a ratio measured on a loaded machine comes with the cost that explains it.

Beside the HTTP figures, the same client drives ``AcmeServer`` in-process (no HTTP server:
what the protocol, the database and the CA cost on their own) and counts the database
transactions (BEGINs) per certificate there, issuance's own included.

    .venv/bin/python bench/acme.py [--count-1 N] [--count-8 N] [--db sqlite|postgresql|both]
                                   [--workers N] [--no-in-process]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from josepy import jwa
from josepy.jwk import JWKEC

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PG_ADMIN = os.environ.get(
    "CERTFLEET_TEST_PG", "postgresql+psycopg://certfleet:certfleet@127.0.0.1:5432/certfleet_test"
)
POLL = 0.01


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


class Responder:
    """http-01 answers for every server: a dict token -> key authorization."""

    def __init__(self) -> None:
        tokens: dict[str, str] = {}
        self.tokens = tokens

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body = tokens.get(self.path.rsplit("/", 1)[-1], "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Client:
    """A minimal RFC 8555 client: ES256 account key, kid-signed POSTs, nonce reuse."""

    def __init__(
        self,
        directory_url: str,
        verify: ssl.SSLContext | bool,
        responder: Responder,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(verify=verify, timeout=30, transport=transport)
        self.dir = self.http.get(directory_url).json()
        self.key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        self.thumb = b64(self.key.thumbprint())
        self.responder = responder
        self.nonce: str | None = None
        self.kid: str | None = None
        response = self.post(self.dir["newAccount"], {"termsOfServiceAgreed": True})
        self.kid = response.headers["Location"]

    def post(self, url: str, payload: Any) -> httpx.Response:
        for _ in range(3):
            if self.nonce is None:
                self.nonce = self.http.head(self.dir["newNonce"]).headers["Replay-Nonce"]
            protected: dict[str, Any] = {"alg": "ES256", "nonce": self.nonce, "url": url}
            if self.kid:
                protected["kid"] = self.kid
            else:
                protected["jwk"] = self.key.public_key().to_partial_json()
            p64 = b64(json.dumps(protected).encode())
            body = b"" if payload is None else json.dumps(payload).encode()
            l64 = b64(body) if body else ""
            sig = jwa.ES256.sign(self.key.key, f"{p64}.{l64}".encode())
            response = self.http.post(
                url,
                content=json.dumps({"protected": p64, "payload": l64, "signature": b64(sig)}),
                headers={"Content-Type": "application/jose+json"},
            )
            self.nonce = response.headers.get("Replay-Nonce")
            if response.status_code == 400 and "badNonce" in response.text:
                continue
            if response.status_code >= 400:
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
            return response
        raise RuntimeError("three badNonce in a row")

    def issue(self, name: str) -> bytes:
        order = self.post(self.dir["newOrder"], {"identifiers": [{"type": "dns", "value": name}]})
        order_url, body = order.headers["Location"], order.json()
        for authz_url in body["authorizations"]:
            authz = self.post(authz_url, None).json()
            chall = next(c for c in authz["challenges"] if c["type"] == "http-01")
            self.responder.tokens[chall["token"]] = f"{chall['token']}.{self.thumb}"
            self.post(chall["url"], {})
            while authz["status"] == "pending":
                time.sleep(POLL)
                authz = self.post(authz_url, None).json()
            if authz["status"] != "valid":
                raise RuntimeError(f"validation failed: {authz}")
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        done = self.post(body["finalize"], {"csr": b64(csr.public_bytes(serialization.Encoding.DER))}).json()
        while done["status"] in ("ready", "processing"):
            time.sleep(POLL)
            done = self.post(order_url, None).json()
        if done["status"] != "valid":
            raise RuntimeError(f"finalize failed: {done}")
        return self.post(done["certificate"], None).content


@dataclass
class Server:
    label: str
    directory_url: str
    verify: ssl.SSLContext | bool
    stop: Any
    transport: httpx.BaseTransport | None = None
    platform: Any = None  # in-process only: its database's transactions are counted
    pid: int | None = None  # a server process: its CPU and its children's is counted


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live descendants, from /proc.

    Read before and after a run: serve's supervisor and its worker processes live for the
    whole run, so the difference is what the server spent on that run's certificates."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(member, 0.0) for member in tree)


class InProcessTransport(httpx.BaseTransport):
    """Calls ``AcmeServer`` directly, without HTTP: what the protocol and the database cost
    on their own, beside the HTTP figure (the serving stack is measured by the HTTP runs)."""

    def __init__(self, platform: Any, base: str) -> None:
        import re

        from certfleet.api.acme import _SIGNED_POSTS
        from certfleet.protocols.acme import AcmeRequest, AcmeUrls

        self._server = platform.acme
        self._urls = AcmeUrls(base + "/acme")
        self._request = AcmeRequest
        # _SIGNED_POSTS maps path segments, ("order", "{id}", "finalize"), to endpoints.
        self._routes = [
            (
                re.compile(
                    "^/acme/" + "/".join("([^/]+)" if p == "{id}" else re.escape(p) for p in path) + "$"
                ),
                endpoint,
            )
            for path, endpoint in _SIGNED_POSTS.items()
        ]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/acme/directory":
            return httpx.Response(200, json=self._server.directory(self._urls))
        if path == "/acme/new-nonce":
            return httpx.Response(200, headers={"Replay-Nonce": self._server.new_nonce()})
        for pattern, endpoint in self._routes:
            match = pattern.match(path)
            if match:
                body = request.read()
                acme = self._request(str(request.url), request.headers.get("content-type"), body, self._urls)
                result = self._server.handle(endpoint, acme, match.group(1) if match.groups() else None)
                content = result.body if isinstance(result.body, bytes) else json.dumps(result.body).encode()
                headers = {**result.headers, "Content-Type": result.content_type}
                return httpx.Response(result.status, content=content or b"", headers=headers)
        return httpx.Response(404)


def start_in_process(tmp: Path, label: str, dns: str, http01: int, db_url: str | None) -> Server:
    from certfleet.app import open_platform
    from certfleet.config import load_settings
    from certfleet.x509 import KeyType

    data = tmp / ("inproc-" + "".join(c for c in label.lower() if c.isalnum()))
    data.mkdir(mode=0o700)
    (data / "config.toml").write_text(f'[acme]\nresolver = "{dns}"\nhttp01_port = {http01}\n')
    settings = load_settings({}, data_dir=data, database_url=db_url or f"sqlite:///{data / 'certfleet.db'}")
    platform = open_platform(settings, create=True)
    platform.authorities.initialize("Bench", KeyType.EC_P256, actor="bench")
    base = "https://acme.bench.test"
    transport = InProcessTransport(platform, base)
    return Server(label, f"{base}/acme/directory", False, platform.close, transport, platform)


def start_challtestsrv() -> tuple[str, Any]:
    dns, mgmt = free_port(), free_port()
    proc = subprocess.Popen(
        [
            "pebble-challtestsrv",
            "-dns01",
            f"127.0.0.1:{dns}",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            f"127.0.0.1:{mgmt}",
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", mgmt), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(up, 10, "pebble-challtestsrv")
    return f"127.0.0.1:{dns}", proc


def start_certfleet(
    tmp: Path, label: str, dns: str, http01: int, db_url: str | None, workers: int | None = None
) -> Server:
    data = tmp / "".join(c for c in label.lower() if c.isalnum())
    db = ["--db", db_url] if db_url else []
    run = [str(BIN / "certfleet")]
    subprocess.run([*run, "init", "--data-dir", str(data), *db], check=True, capture_output=True)
    root = data / "root.pem"
    root.write_text(
        subprocess.run(
            [*run, "ca", "root", "--data-dir", str(data), *db], check=True, capture_output=True, text=True
        ).stdout
    )
    https = free_port()
    log = (tmp / f"{data.name}.log").open("w")
    proc = subprocess.Popen(
        [
            *run,
            "serve",
            "--https",
            f"127.0.0.1:{https}",
            "--http",
            f"127.0.0.1:{free_port()}",
            "--acme-resolver",
            dns,
            "--acme-http01-port",
            str(http01),
            "--data-dir",
            str(data),
            *db,
            *(["--workers", str(workers)] if workers else []),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"https://127.0.0.1:{https}/acme/directory"
    verify = ssl.create_default_context(cafile=str(root))

    def up() -> bool:
        try:
            return httpx.get(url, verify=verify, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 60, label)

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()

    return Server(label, url, verify, stop, pid=proc.pid)


def start_pebble(tmp: Path, dns: str, http01: int) -> Server:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp / "pebble.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "pebble.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    port = free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{free_port()}",
            "certificate": str(tmp / "pebble.crt"),
            "privateKey": str(tmp / "pebble.key"),
            "httpPort": http01,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (tmp / "pebble.json").write_text(json.dumps(config))
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    log = (tmp / "pebble.log").open("w")
    proc = subprocess.Popen(
        ["pebble", "-config", str(tmp / "pebble.json"), "-dnsserver", dns],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"https://127.0.0.1:{port}/dir"
    verify = ssl.create_default_context(cafile=str(tmp / "pebble.crt"))

    def up() -> bool:
        try:
            return httpx.get(url, verify=verify, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, "pebble")

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()

    return Server("pebble 2.4 (in memory)", url, verify, stop, pid=proc.pid)


def measure(server: Server, responder: Responder, concurrency: int, count: int) -> float:
    clients = [
        Client(server.directory_url, server.verify, responder, server.transport) for _ in range(concurrency)
    ]
    clients[0].issue(f"warm-{secrets.token_hex(4)}.bench.example.test")
    per_client = [count // concurrency + (1 if i < count % concurrency else 0) for i in range(concurrency)]

    def work(index: int) -> int:
        client = clients[index]
        for _ in range(per_client[index]):
            pem = client.issue(f"c{index}-{secrets.token_hex(5)}.bench.example.test")
            assert b"BEGIN CERTIFICATE" in pem
        return per_client[index]

    begins = [0]
    if server.platform is not None:
        from sqlalchemy import event

        def count(_conn: Any) -> None:
            begins[0] += 1

        event.listen(server.platform.database.engine, "begin", count)
    cpu_before = process_tree_cpu(server.pid) if server.pid is not None else 0.0
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = sum(pool.map(work, range(concurrency)))
    rate = done / (time.perf_counter() - started)
    if server.pid is not None:
        CPU_MS[(server.label, concurrency)] = (process_tree_cpu(server.pid) - cpu_before) * 1000 / done
    if server.platform is not None:
        event.remove(server.platform.database.engine, "begin", count)
        TRANSACTIONS[(server.label, concurrency)] = begins[0] / done
    return rate


TRANSACTIONS: dict[tuple[str, int], float] = {}
CPU_MS: dict[tuple[str, int], float] = {}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pg_database() -> tuple[str, Any]:
    plain = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    name = f"certfleet_bench_{secrets.token_hex(4)}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count-1", type=int, default=30, help="certificates at concurrency 1")
    parser.add_argument("--count-8", type=int, default=120, help="certificates at concurrency 8")
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), default="both", help="certfleet's database(s)"
    )
    parser.add_argument("--skip-pg", action="store_true", help="the same as --db sqlite")
    parser.add_argument("--workers", type=int, help="certfleet serve --workers (default: serve's)")
    parser.add_argument(
        "--no-in-process", action="store_true", help="leave out the in-process (no HTTP) figures"
    )
    args = parser.parse_args()
    databases = ["sqlite"] if args.skip_pg or args.db == "sqlite" else []
    databases = databases or (["postgresql"] if args.db == "postgresql" else ["sqlite", "postgresql"])
    for tool in ("pebble", "pebble-challtestsrv"):
        if not shutil.which(tool):
            print(f"{tool} is not installed (Debian package pebble)", file=sys.stderr)
            return 2
    load_before = load_average()
    responder = Responder()
    dns, dns_proc = start_challtestsrv()
    results: dict[tuple[str, int], float] = {}
    cleanups: list[Any] = [lambda: (dns_proc.terminate(), dns_proc.wait(timeout=10))]
    with tempfile.TemporaryDirectory(prefix="certfleet-acme-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            starters: list[Any] = [lambda: start_pebble(tmp, dns, responder.port)]
            for database in databases:
                url: str | None = None
                if database == "postgresql":
                    url, drop = pg_database()
                    cleanups.append(drop)
                name = "SQLite" if url is None else "PostgreSQL"
                starters.append(
                    lambda url=url, name=name: start_certfleet(
                        tmp, f"certfleet ({name})", dns, responder.port, url, args.workers
                    )
                )
                if not args.no_in_process:
                    in_process_url = None
                    if url is not None:
                        in_process_url, drop = pg_database()
                        cleanups.append(drop)
                    starters.append(
                        lambda url=in_process_url, name=name: start_in_process(
                            tmp, f"in-process ({name})", dns, responder.port, url
                        )
                    )
            labels = []
            for start in starters:
                server = start()
                labels.append(server.label)
                try:
                    for concurrency, count in ((1, args.count_1), (8, args.count_8)):
                        results[(server.label, concurrency)] = measure(server, responder, concurrency, count)
                finally:
                    server.stop()
        finally:
            for cleanup in reversed(cleanups):
                cleanup()
    print(
        f"end-to-end issuance (order, http-01, finalize, download); "
        f"{args.count_1} certs at concurrency 1, {args.count_8} at 8"
    )
    print(f"load average before: {load_before}, after: {load_average()}")
    header = f"{'server':28} {'conc':>4} {'certs/s':>8} {'vs pebble':>10} {'server CPU ms/cert':>19}"
    print(f"{header} {'transactions/cert':>18}")
    for label in labels:
        for concurrency in (1, 8):
            rate = results[(label, concurrency)]
            base = results[(labels[0], concurrency)]
            per_cert = TRANSACTIONS.get((label, concurrency))
            tx = f"{per_cert:18.1f}" if per_cert is not None else f"{'':18}"
            cpu_ms = CPU_MS.get((label, concurrency))
            cpu = f"{cpu_ms:19.1f}" if cpu_ms is not None else f"{'':19}"
            print(f"{label:28} {concurrency:>4} {rate:>8.2f} {rate / base:>9.2f}x {cpu} {tx}")
    print("server CPU ms/cert: user + system CPU of the server's processes (serve's supervisor and")
    print("workers; pebble) from /proc over the run, per certificate; the client harness is not in it")
    print("in-process: AcmeServer called without HTTP (protocol, database, CA); transactions")
    print("per certificate include issuance's own and the validation worker's")
    return 0


if __name__ == "__main__":
    sys.exit(main())

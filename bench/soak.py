"""Soak: sustained mixed load against two ``certfleet serve`` nodes on one PostgreSQL.

- REST issuance (an ECDSA P-256 CSR per request), clients alternating the nodes;
- OCSP, GET and POST, by wrk on each node's plain-HTTP listener (for an issued certificate);
- ACME through certbot's ``acme`` library (new order, http-01 answered by an in-process
  responder, poll and finalize), one client per node;
- inventory queries (``GET /api/v1/certificates``), alternating the nodes.

It prints the requests of each kind, the errors (any 5xx, any failed exchange), the p99
latency, and each node's RSS after the warm-up and at the end: the test of "memory flat".
tests/integration/test_soak.py runs a shortened one in CI; the full run is ten minutes:

    .venv/bin/python bench/soak.py --minutes 10
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import importlib.util
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import httpx
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path.pop(0)  # run as a script: ``acme`` must be certbot's library, not bench/acme.py
PG_ADMIN = os.environ.get(
    "CERTFLEET_TEST_PG", "postgresql+psycopg://certfleet:certfleet@127.0.0.1:5432/certfleet_test"
)
WARM_UP_FRACTION = 0.25  # RSS is first read once a quarter of the run has passed


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


issuance = _load("issuance")
acme_bench = _load("acme")


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    https: str
    http: str
    root: Path


@dataclass
class Tally:
    """Requests of one kind: latencies of the answered ones, errors (5xx or a failed exchange)."""

    kind: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, call: Callable[[], object]) -> None:
        started = time.perf_counter()
        try:
            response = call()
        except Exception as exc:
            with self._lock:
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            return
        elapsed = time.perf_counter() - started
        with self._lock:
            if isinstance(response, httpx.Response) and response.status_code >= 500:
                self.errors.append(f"{response.status_code}: {response.text[:200]}")
            else:
                self.latencies.append(elapsed)

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.errors)

    def p99_ms(self) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@dataclass
class WrkResult:
    kind: str
    requests: int
    errors: int
    p99_ms: float


@dataclass
class SoakReport:
    seconds: float
    tallies: list[Tally]
    wrk: list[WrkResult]
    rss_start_kib: list[int]
    rss_end_kib: list[int]

    @property
    def errors(self) -> int:
        return sum(len(t.errors) for t in self.tallies) + sum(w.errors for w in self.wrk)

    def lines(self) -> list[str]:
        out = [f"soak: {self.seconds:.0f} s, two nodes on PostgreSQL, load average {os.getloadavg()[0]:.1f}"]
        out.append("kind               requests  errors   p99 ms")
        for t in self.tallies:
            out.append(f"{t.kind:<18} {t.requests:>8} {len(t.errors):>7} {t.p99_ms():>8.1f}")
        for w in self.wrk:
            out.append(f"{w.kind:<18} {w.requests:>8} {w.errors:>7} {w.p99_ms:>8.1f}")
        for i, (start, end) in enumerate(zip(self.rss_start_kib, self.rss_end_kib, strict=True)):
            out.append(f"node {i} RSS: {start / 1024:.1f} MiB after warm-up, {end / 1024:.1f} MiB at the end")
        return out


def _trust(root: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(root))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _cli(*args: str) -> str:
    return subprocess.run(
        [issuance.CERTFLEET, *args], check=True, capture_output=True, text=True, env=issuance._env()
    ).stdout


@contextmanager
def two_nodes(work: Path, acme_args: list[str]) -> Iterator[tuple[list[Node], str]]:
    """Two ``serve --workers 1`` nodes on a new database (the second a copy of the first's
    data directory, so both hold the same CA keys); yields them and an admin token."""
    name = f"certfleet_soak_{secrets.token_hex(4)}"
    plain = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    nodes: list[Node] = []
    try:
        first = work / "n0"
        _cli("init", "--data-dir", str(first), "--db", url)
        for index in range(2):
            data = work / f"n{index}"
            if index:
                shutil.copytree(first, data, ignore=shutil.ignore_patterns("*.log"))
            https, http = issuance.free_port(), issuance.free_port()
            argv = [issuance.CERTFLEET, "serve", "--https", f"127.0.0.1:{https}", "--http"]
            argv += [f"127.0.0.1:{http}", "--workers", "1", "--data-dir", str(data), "--db", url, *acme_args]
            log = (work / f"n{index}.log").open("wb")
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=issuance._env())
            root = data / "root.pem"
            root.write_text(_cli("ca", "root", "--data-dir", str(data), "--db", url))
            node = Node(process, f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}", root)
            nodes.append(node)

            def up(node: Node = node) -> bool:
                try:
                    return (
                        httpx.get(f"{node.https}/healthz", verify=_trust(node.root), timeout=2).status_code
                        == 200
                    )
                except httpx.HTTPError:
                    return False

            issuance.wait_until(up, f"node {index}", process)
        token = _cli(
            "token", "create", "--team", "soak", "--scope", "admin", "--data-dir", str(first), "--db", url
        )
        yield nodes, token.strip()
    finally:
        for node in nodes:
            node.process.terminate()
        for node in nodes:
            try:
                node.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _csr_pem(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _ocsp_request(nodes: list[Node], token: str) -> bytes:
    issued = httpx.post(
        f"{nodes[0].https}/api/v1/certificates",
        json={"csr": _csr_pem("ocsp.soak.example.test"), "validity_days": 30},
        headers={"Authorization": f"Bearer {token}"},
        verify=_trust(nodes[0].root),
        timeout=60,
    )
    issued.raise_for_status()
    body = issued.json()
    cert = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    issuer = x509.load_pem_x509_certificates(body["chain_pem"].encode())[0]
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return request.public_bytes(serialization.Encoding.DER)


def _wrk(
    node: Node, method: str, request: bytes, seconds: int, work: Path, index: int
) -> subprocess.Popen[str]:
    if method == "GET":
        encoded = (
            base64.b64encode(request).decode().replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        )
        url, script = f"{node.http}/ocsp/{encoded}", 'wrk.method = "GET"\n'
    else:
        body = "".join(f"\\{b:03d}" for b in request)
        url = f"{node.http}/ocsp"
        script = f'wrk.method = "POST"\nwrk.body = "{body}"\n'
        script += 'wrk.headers["Content-Type"] = "application/ocsp-request"\n'
    path = work / f"ocsp-{method}-{index}.lua"
    path.write_text(script)
    argv = ["wrk", "-t1", "-c2", f"-d{seconds}s", "--latency", "-s", str(path), url]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _parse_wrk(kind: str, output: str) -> WrkResult:
    requests = errors = 0
    p99 = 0.0
    for line in output.splitlines():
        words = line.split()
        if "requests in" in line:
            requests = int(words[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            errors += int(words[-1])
        elif line.strip().startswith("Socket errors:"):
            errors += sum(int(w.rstrip(",")) for w in words if w.rstrip(",").isdigit())
        elif words[:1] == ["99%"]:
            value = words[1]
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
            unit = next(u for u in ("us", "ms", "s") if value.endswith(u))
            p99 = float(value[: -len(unit)]) * scale[unit]
    return WrkResult(kind, requests, errors, p99)


def _acme_client(node: Node, responder: object, tally: Tally, stop: threading.Event) -> None:
    from acme import challenges, client, messages
    from josepy import jwa
    from josepy.jwk import JWKEC

    key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=jwa.ES256, user_agent="certfleet-soak", verify_ssl=str(node.root))  # type: ignore[arg-type]
    directory = client.ClientV2.get_directory(f"{node.https}/acme/directory", net)
    acme = client.ClientV2(directory, net)
    net.account = acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))

    def one() -> None:
        name = f"acme-{secrets.token_hex(4)}.soak.example.test"
        order = acme.new_order(_csr_pem(name).encode())
        for authz in order.authorizations:
            challb = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
            response, validation = challb.response_and_validation(key)
            responder.tokens[challb.chall.encode("token")] = validation  # type: ignore[attr-defined]
            acme.answer_challenge(challb, response)
        done = acme.poll_and_finalize(order, dt.datetime.now() + dt.timedelta(seconds=60))
        if "BEGIN CERTIFICATE" not in done.fullchain_pem:
            raise RuntimeError("no certificate")

    while not stop.is_set():
        tally.timed(one)  # one() returns None: there is no response to check


def run(seconds: float, work: Path) -> SoakReport:
    responder = acme_bench.Responder()
    dns, challtestsrv = acme_bench.start_challtestsrv()
    acme_args = ["--acme-resolver", dns, "--acme-http01-port", str(responder.port)]
    try:
        with two_nodes(work, acme_args) as (nodes, token):
            request = _ocsp_request(nodes, token)
            rest, acme, inventory = Tally("REST issuance"), Tally("ACME (acme lib)"), Tally("inventory query")
            stop = threading.Event()
            headers = {"Authorization": f"Bearer {token}"}
            clients = [httpx.Client(verify=_trust(n.root), headers=headers, timeout=60) for n in nodes]

            def issuing(lane: int) -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    c, node = clients[n % 2], nodes[n % 2]
                    body = {"csr": _csr_pem(f"rest-{lane}-{n}.soak.example.test"), "validity_days": 30}
                    rest.timed(lambda: c.post(f"{node.https}/api/v1/certificates", json=body))  # noqa: B023

            def querying() -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    c, node = clients[n % 2], nodes[n % 2]
                    inventory.timed(lambda: c.get(f"{node.https}/api/v1/certificates", params={"limit": 50}))  # noqa: B023
                    stop.wait(0.05)

            threads = [threading.Thread(target=issuing, args=(i,)) for i in range(2)]
            threads += [threading.Thread(target=querying)]
            threads += [threading.Thread(target=_acme_client, args=(n, responder, acme, stop)) for n in nodes]
            wrks = [
                (f"OCSP {method} (wrk)", _wrk(node, method, request, int(seconds), work, i))
                for i, node in enumerate(nodes)
                for method in ("GET", "POST")
            ]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            time.sleep(seconds * WARM_UP_FRACTION)  # the warm-up: load runs meanwhile
            rss_start = [rss_kib(n.process.pid) for n in nodes]
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
            rss_end = [rss_kib(n.process.pid) for n in nodes]
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
            results: dict[str, WrkResult] = {}
            for kind, process in wrks:
                output, _ = process.communicate(timeout=120)
                parsed = _parse_wrk(kind, output)
                total = results.setdefault(kind, WrkResult(kind, 0, 0, 0.0))
                total.requests += parsed.requests
                total.errors += parsed.errors
                total.p99_ms = max(total.p99_ms, parsed.p99_ms)
            for c in clients:
                c.close()
            elapsed = time.monotonic() - started
            return SoakReport(elapsed, [rest, acme, inventory], list(results.values()), rss_start, rss_end)
    finally:
        challtestsrv.terminate()
        challtestsrv.wait()
        responder.server.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        report = run(args.minutes * 60, Path(tmp))
    for line in report.lines():
        print(line)
    for tally in report.tallies:
        for error in tally.errors[:5]:
            print(f"  {tally.kind}: {error}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())

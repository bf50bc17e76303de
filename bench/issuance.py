"""Issuance throughput: certfleet's REST API against two baselines measured in the same run.

1. ``certfleet serve`` (SQLite): POST /api/v1/certificates with an ECDSA P-256 CSR over HTTPS
   and a bearer token, at concurrency 1 and 16. Each certificate is validated, its serial
   recorded before signing, signed, stored in the inventory and audited.
2. raw ``cryptography`` in this process: parse and verify the same CSR, build a certificate with
   the same extensions as certfleet's (copied from one it issued) and sign it with a P-256 key.
   Nothing is stored: this is the ceiling of build-and-sign in Python.
3. ``cfssl serve`` (Debian golang-cfssl) with a P-256 CA, over HTTPS as well, POST
   /api/v1/cfssl/sign with the same CSRs at the same concurrencies. cfssl stores nothing.

Run: ``.venv/bin/python bench/issuance.py [--count 300]``. The client is Python (httpx with
kept-alive connections); it saturates near 1,500 requests/s here, far above these rates.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))
WARMUP = 10
READY_DEADLINE_SECONDS = 60


@dataclass(frozen=True)
class Result:
    name: str
    concurrency: int
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_csrs(count: int) -> list[str]:
    csrs = []
    for i in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        name = f"h{i}.bench.example.test"
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        csrs.append(csr.public_bytes(serialization.Encoding.PEM).decode())
    return csrs


def wait_until(check: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_DEADLINE_SECONDS
    while not check():
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not ready after {READY_DEADLINE_SECONDS} s")
        time.sleep(0.05)


@contextmanager
def running(argv: list[str], log: Path, ready: Callable[[], bool], what: str) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(ready, what, process)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def post_all(
    url: str, bodies: list[dict[str, str]], concurrency: int, trust: ssl.SSLContext, headers: dict[str, str]
) -> tuple[float, list[dict[str, object]]]:
    """POST every body but the first WARMUP (those open connections and warm caches outside the
    timing) with ``concurrency`` workers on kept-alive connections; seconds taken."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(verify=trust, limits=limits, headers=headers, timeout=60) as client:
        await asyncio.gather(*(client.post(url, json=b) for b in bodies[:WARMUP]))
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        for body in bodies[WARMUP:]:
            queue.put_nowait(body)
        replies: list[dict[str, object]] = []

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post(url, json=body)
                if response.status_code >= 300:
                    raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
                replies.append(response.json())

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, replies


def raw_sign(csrs: list[str], template: x509.Certificate) -> float:
    """Build and sign the certificate certfleet would, in-process, with nothing stored."""
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    copied = [
        e
        for e in template.extensions
        if e.oid not in (ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    ]
    start = time.perf_counter()
    for pem in csrs:
        csr = x509.load_pem_x509_csr(pem.encode())
        if not csr.is_signature_valid:
            raise SystemExit("CSR does not verify")
        public_key = csr.public_key()
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(template.issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, critical=False
            )
        )
        for extension in copied:
            builder = builder.add_extension(extension.value, extension.critical)
        builder.sign(issuer_key, hashes.SHA256())
    return time.perf_counter() - start


def cfssl_ca(directory: Path) -> tuple[Path, Path, Path, Path, Path]:
    """A P-256 CA for cfssl, a TLS certificate for its listener, and a signing config."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cfssl bench CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    tls_key = ec.generate_private_key(ec.SECP256R1())
    tls = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(name)
        .public_key(tls_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    no_password = serialization.NoEncryption()
    paths = [directory / n for n in ("ca.pem", "ca-key.pem", "tls.pem", "tls-key.pem", "config.json")]
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, no_password
        )
    )
    paths[2].write_bytes(tls.public_bytes(serialization.Encoding.PEM))
    paths[3].write_bytes(
        tls_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, no_password
        )
    )
    config = {"signing": {"default": {"expiry": "2160h", "usages": ["digital signature", "server auth"]}}}
    paths[4].write_text(json.dumps(config))
    for path in (paths[1], paths[3]):
        path.chmod(0o600)
    return paths[0], paths[1], paths[2], paths[3], paths[4]


def tcp_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    return check


def bench_certfleet(work: Path, csrs: list[str], levels: list[int]) -> tuple[list[Result], x509.Certificate]:
    data = work / "certfleet"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}
    subprocess.run([CERTFLEET, "init", "--data-dir", str(data)], check=True, capture_output=True, env=env)
    token = subprocess.run(
        [CERTFLEET, "token", "create", "--team", "bench", "--scope", "admin", "--data-dir", str(data)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    https, http = free_port(), free_port()
    log = work / "certfleet.log"
    argv = [
        CERTFLEET,
        "serve",
        "--https",
        f"127.0.0.1:{https}",
        "--http",
        f"127.0.0.1:{http}",
        "--data-dir",
        str(data),
    ]
    results = []
    with running(argv, log, lambda: "certfleet API:" in log.read_text(), "certfleet serve"):
        root = httpx.get(f"http://127.0.0.1:{http}/ca/root.pem").content
        trust = ssl.create_default_context(cadata=root.decode())
        url = f"https://127.0.0.1:{https}/api/v1/certificates"
        headers = {"Authorization": f"Bearer {token}"}
        template = None
        for level in levels:
            seconds, replies = asyncio.run(post_all(url, [{"csr": c} for c in csrs], level, trust, headers))
            results.append(Result("certfleet REST (HTTPS, SQLite)", level, len(replies), seconds))
            template = x509.load_pem_x509_certificate(str(replies[0]["certificate_pem"]).encode())
    assert template is not None
    return results, template


def bench_cfssl(work: Path, csrs: list[str], levels: list[int]) -> list[Result]:
    cfssl = shutil.which("cfssl")
    if cfssl is None:
        raise SystemExit("cfssl not found: apt-get install golang-cfssl")
    ca, ca_key, tls, tls_key, config = cfssl_ca(work)
    port = free_port()
    argv = [
        cfssl,
        "serve",
        "-address",
        "127.0.0.1",
        "-port",
        str(port),
        "-ca",
        str(ca),
        "-ca-key",
        str(ca_key),
        "-config",
        str(config),
        "-tls-cert",
        str(tls),
        "-tls-key",
        str(tls_key),
        "-loglevel",
        "5",
    ]
    results = []
    with running(argv, work / "cfssl.log", tcp_open(port), "cfssl serve"):
        trust = ssl.create_default_context(cafile=str(ca))
        url = f"https://127.0.0.1:{port}/api/v1/cfssl/sign"
        for level in levels:
            bodies = [{"certificate_request": c} for c in csrs]
            seconds, replies = asyncio.run(post_all(url, bodies, level, trust, {}))
            if not all(r.get("success") for r in replies):
                raise SystemExit("cfssl refused a CSR")
            results.append(Result("cfssl serve (HTTPS, no store)", level, len(replies), seconds))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=300, help="certificates per run (default 300)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    csrs = make_csrs(args.count + WARMUP)
    with tempfile.TemporaryDirectory(prefix="certfleet-bench-") as tmp:
        work = Path(tmp)
        certfleet_results, template = bench_certfleet(work, csrs, args.concurrency)
        raw = Result("raw cryptography (in-process)", 1, args.count, raw_sign(csrs[WARMUP:], template))
        cfssl_results = bench_cfssl(work, csrs, args.concurrency)
    by_level = {r.concurrency: r for r in cfssl_results}
    print(f"{args.count} ECDSA P-256 CSRs per run; issuing CA P-256 / SHA-256 everywhere")
    print(f"{'system':<34} {'conc':>4} {'certs/s':>9} {'vs raw':>8} {'vs cfssl':>9}")
    for result in (raw, *certfleet_results, *cfssl_results):
        peer = by_level.get(result.concurrency)
        vs_cfssl = f"{result.rate / peer.rate:8.2f}x" if peer and result.name.startswith("certfleet") else ""
        print(
            f"{result.name:<34} {result.concurrency:>4} {result.rate:>9.1f} "
            f"{result.rate / raw.rate:>7.3f}x {vs_cfssl:>9}"
        )


if __name__ == "__main__":
    main()

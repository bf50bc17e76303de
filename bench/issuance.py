"""Issuance throughput: certfleet's REST API against cfssl serve, both over HTTPS, driven by wrk.

1. ``certfleet serve`` (SQLite data directory, default workers: one per core): ``POST
   /api/v1/certificates`` with an ECDSA P-256 CSR and a bearer token. Each certificate is
   validated, judged by the policy gate, its serial committed (durably) before signing, signed,
   stored in the inventory with its serial state, a hash-chained audit entry and an outbox event.
   After the run the script stops the server and checks that every certificate a client got is
   in the inventory with its audit entry (row counts) and that ``certfleet audit verify`` passes.
2. ``cfssl serve`` (Debian golang-cfssl) with a P-256 CA, ``-tls-cert``/``-tls-key`` so it is
   HTTPS too, ``POST /api/v1/cfssl/sign`` with the same CSR. cfssl stores nothing.
3. In-process: ``IssuanceService.issue`` alone (no HTTP, no TLS) from N threads on a fresh SQLite
   data directory, with the write transactions it ran per certificate: where the time goes once
   the HTTP stack is taken away.

wrk (``apt-get install wrk``) drives both servers with a Lua script posting the same CSR
(``wrk -t2 -cC -dDs``); a Python client saturates near 1,500 requests/s here, too close to
these rates. Run: ``.venv/bin/python bench/issuance.py [--seconds 10] [--connections 8 64]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))
READY_DEADLINE_SECONDS = 60
BENCH_NAME = "www.bench.example.test"
WARMUP_SECONDS = 2

# wrk's Lua side: the same POST on every request; `done` prints one JSON line for the script.
LUA = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(auth)s
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "connect": %%d, "read": %%d, '
    .. '"write": %%d, "timeout": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Run:
    system: str
    connections: int
    ok: int
    failed: int
    seconds: float
    p50_ms: float
    p99_ms: float
    # CPU seconds the server's processes used during the run (None: not measured).
    server_cpu: float | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    @property
    def cpu_ms_per_cert(self) -> float | None:
        """Server CPU per certificate handed out: unlike certs/s, comparable across runs on
        a loaded machine (work queued behind other processes costs no CPU)."""
        return 1000 * self.server_cpu / self.ok if self.server_cpu is not None and self.ok else None


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every live descendant (``serve --workers N``
    forks its workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pids, total = [pid], 0.0
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        total += (int(fields[11]) + int(fields[12])) / tick
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                pids += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BENCH_NAME)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(BENCH_NAME)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def wait_until(check: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_DEADLINE_SECONDS
    while not check():
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not ready after {READY_DEADLINE_SECONDS} s")
        time.sleep(0.05)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}


@contextmanager
def running(
    argv: list[str], log: Path, ready: Callable[[], bool], what: str
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=_env())
    try:
        wait_until(ready, what, process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk(
    url: str, body: dict[str, str], headers: dict[str, str], connections: int, seconds: int, work: Path
) -> dict[str, int]:
    auth = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = work / f"post-{connections}.lua"
    script.write_text(LUA % {"body": json.dumps(body), "auth": auth})
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script), url]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    line = next(x for x in reversed(out.splitlines()) if x.startswith("{"))
    figures: dict[str, int] = json.loads(line)
    return figures


def measure(
    system: str,
    url: str,
    body: dict[str, str],
    headers: dict[str, str],
    connections: int,
    seconds: int,
    work: Path,
    server_pid: int | None = None,
) -> Run:
    cpu_before = server_cpu_seconds(server_pid) if server_pid is not None else None
    figures = wrk(url, body, headers, connections, seconds, work)
    cpu = (
        server_cpu_seconds(server_pid) - cpu_before
        if server_pid is not None and cpu_before is not None
        else None
    )
    failed = figures["non_2xx"] + figures["read"] + figures["write"] + figures["timeout"]
    return Run(
        system,
        connections,
        figures["requests"] - figures["non_2xx"],
        failed,
        figures["duration_us"] / 1e6,
        figures["p50_us"] / 1000,
        figures["p99_us"] / 1000,
        cpu,
    )


def certfleet_cli(*args: str, data: Path) -> str:
    argv = [CERTFLEET, *args, "--data-dir", str(data)]
    return subprocess.run(argv, check=True, capture_output=True, text=True, env=_env()).stdout


def bench_certfleet(work: Path, csr: str, levels: list[int], seconds: int) -> tuple[list[Run], list[str]]:
    data = work / "certfleet"
    certfleet_cli("init", data=data)
    token = certfleet_cli("token", "create", "--team", "bench", "--scope", "admin", data=data).strip()
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
    url = f"https://127.0.0.1:{https}/api/v1/certificates"
    body, headers = {"csr": csr}, {"Authorization": f"Bearer {token}"}
    runs: list[Run] = []
    served = 0
    with running(argv, log, lambda: "certfleet API:" in log.read_text(), "certfleet serve") as server:
        warm = measure("warm-up", url, body, headers, levels[0], WARMUP_SECONDS, work)
        served += warm.ok
        for level in levels:
            system = "certfleet serve (HTTPS, SQLite)"
            run = measure(system, url, body, headers, level, seconds, work, server.pid)
            served += run.ok
            runs.append(run)
    return runs, verify_certfleet(data, served)


def verify_certfleet(data: Path, served: int) -> list[str]:
    """Every certificate a client received is in the inventory with its serial marked issued,
    its audit entry and its outbox event; the audit chain verifies. Returns findings."""
    like = f"%{BENCH_NAME}%"
    with sqlite3.connect(data / "certfleet.db") as db:
        certs = db.execute("SELECT count(*) FROM certificates WHERE sans_json LIKE ?", (like,)).fetchone()[0]
        audits = db.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'certificate.issued' AND details_json LIKE ?",
            (like,),
        ).fetchone()[0]
        events = db.execute(
            "SELECT count(*) FROM notification_events WHERE kind = 'issued' AND payload_json LIKE ?", (like,)
        ).fetchone()[0]
        issued = db.execute(
            "SELECT count(*) FROM serials s JOIN certificates c "
            "ON c.fingerprint_sha256 = s.fingerprint_sha256 WHERE s.state = 'issued' AND c.sans_json LIKE ?",
            (like,),
        ).fetchone()[0]
        reserved = db.execute("SELECT count(*) FROM serials WHERE state = 'reserved'").fetchone()[0]
    verdict = subprocess.run(
        [CERTFLEET, "audit", "verify", "--data-dir", str(data)], capture_output=True, text=True, env=_env()
    )
    print(
        f"certfleet inventory check: {served} certificates received by wrk; in the database {certs} "
        f"certificates, {issued} serials marked issued, {audits} audit entries, {events} outbox events; "
        f"{reserved} serials reserved but not issued (requests cut off when the run ended); "
        f"audit verify: exit {verdict.returncode} {verdict.stdout.strip() or verdict.stderr.strip()}"
    )
    problems = []
    if certs < served:
        problems.append(f"{served - certs} certificates handed out are missing from the inventory")
    if not certs == issued == audits == events:
        problems.append("certificates, issued serials, audit entries and events do not match one to one")
    if verdict.returncode != 0:
        problems.append("the audit chain does not verify")
    return problems


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


def bench_cfssl(work: Path, csr: str, levels: list[int], seconds: int) -> list[Run]:
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
    url = f"https://127.0.0.1:{port}/api/v1/cfssl/sign"
    body = {"certificate_request": csr}
    with running(argv, work / "cfssl.log", tcp_open(port), "cfssl serve") as server:
        measure("warm-up", url, body, {}, levels[0], WARMUP_SECONDS, work)
        system = "cfssl serve (HTTPS, no store)"
        return [measure(system, url, body, {}, level, seconds, work, server.pid) for level in levels]


def in_process(work: Path, csr: str, threads: int, count: int) -> tuple[float, float | None]:
    """IssuanceService.issue alone from ``threads`` threads: certificates/s and write
    transactions per certificate (None where the service does not count them)."""
    from certfleet.app import open_platform
    from certfleet.ca import IssuanceRequest
    from certfleet.config import load_settings
    from certfleet.x509 import KeyType

    data = work / f"inproc-{threads}"
    settings = load_settings({}, data_dir=data, database_url=f"sqlite:///{data}/certfleet.db")
    platform = open_platform(settings, create=True)
    try:
        platform.authorities.initialize("Bench", KeyType.EC_P256, actor="bench")
        parsed = x509.load_pem_x509_csr(csr.encode())
        request = IssuanceRequest("tls-server", parsed.public_key(), (BENCH_NAME,))  # type: ignore[arg-type]
        service = platform.issuance
        for _ in range(10):
            service.issue(request, actor="bench")
        before = getattr(service, "transactions", None)
        per_thread = max(1, count // threads)

        def work_thread() -> None:
            for _ in range(per_thread):
                service.issue(request, actor="bench")

        pool = [threading.Thread(target=work_thread) for _ in range(threads)]
        start = time.perf_counter()
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        seconds = time.perf_counter() - start
        after = getattr(service, "transactions", None)
        total = per_thread * threads
        per_cert = (after - before) / total if before is not None and after is not None else None
        return total / seconds, per_cert
    finally:
        platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per level (default 10)")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 64], help="wrk -c levels")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8], help="in-process thread counts")
    parser.add_argument("--count", type=int, default=400, help="certificates per in-process run")
    parser.add_argument("--skip-http", action="store_true", help="only the in-process figures")
    args = parser.parse_args()
    if not args.skip_http and shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    csr = make_csr()
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="certfleet-bench-") as tmp:
        work = Path(tmp)
        inproc = [(t, *in_process(work, csr, t, args.count)) for t in args.threads]
        if not args.skip_http:
            certfleet_runs, problems = bench_certfleet(work, csr, args.connections, args.seconds)
            cfssl_runs = bench_cfssl(work, csr, args.connections, args.seconds)
    print(f"\nin-process IssuanceService.issue (SQLite, {args.count} certificates, no HTTP)")
    print(f"{'threads':>7} {'certs/s':>9} {'write transactions per certificate':>36}")
    for threads, rate, per_cert in inproc:
        shown = f"{per_cert:.2f}" if per_cert is not None else "n/a"
        print(f"{threads:>7} {rate:>9.1f} {shown:>36}")
    if args.skip_http:
        return
    peers = {r.connections: r for r in cfssl_runs}
    print(f"\nREST issuance, ECDSA P-256 CSR, wrk -t2 -cN -d{args.seconds}s, HTTPS on both sides")
    print(
        f"{'system':<34} {'conns':>5} {'certs/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'failed':>6} {'vs cfssl':>9} {'CPU ms/cert':>12} {'CPU vs cfssl':>13}"
    )
    for run in (*certfleet_runs, *cfssl_runs):
        peer = peers[run.connections]
        ours = run.system.startswith("certfleet")
        ratio = f"{run.rate / peer.rate:8.2f}x" if ours else ""
        cpu, peer_cpu = run.cpu_ms_per_cert, peer.cpu_ms_per_cert
        cpu_text = f"{cpu:.2f}" if cpu is not None else "n/a"
        cpu_ratio = f"{cpu / peer_cpu:12.1f}x" if ours and cpu is not None and peer_cpu else ""
        print(
            f"{run.system:<34} {run.connections:>5} {run.rate:>9.1f} {run.p50_ms:>7.1f} {run.p99_ms:>7.1f} "
            f"{run.failed:>6} {ratio:>9} {cpu_text:>12} {cpu_ratio:>13}"
        )
    print(
        "CPU ms/cert: user+system CPU of the server's processes during the run per certificate"
        " handed out (certfleet's background jobs included; cfssl stores nothing)"
    )
    if problems:
        raise SystemExit("certfleet check failed: " + "; ".join(problems))


if __name__ == "__main__":
    main()

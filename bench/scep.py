"""SCEP enrolments per second with micromdm's ``scepclient`` against certfleet and against
micromdm's own ``scepserver``, in the same run, with the ratio (target: at least 1.0x).

- certfleet: one ``certfleet serve`` (SQLite data directory, default workers: one per core),
  plain-HTTP ``/scep``; one challenge (``certfleet scep challenge create --uses N``); every
  enrolment goes through the issuance service (policy gate, serial committed before signing,
  inventory record with source ``scep``, audit entry, outbox event) and a transaction row.
- scepserver (Debian ``scep``): ``scepserver ca -init`` then ``scepserver -challenge``, which
  binds all interfaces, so it runs inside a private network namespace (``unshare -n``, with
  its own loopback) together with its clients. It appends to a flat ``index.txt``.

Each enrolment is one ``scepclient`` process (GetCACert, GetCACaps, PKIOperation by POST)
with an RSA-2048 key made beforehand (key generation is the client's cost, not the
server's), ``--concurrency`` of them at a time, the same client, keys and concurrency for
both servers (scepserver's CA key is RSA-2048 like certfleet's RA); rounds alternate the two
servers, in flipped order every other round, so drift on the shared machine falls on both.
Before its measured round each server has loaded its signing key (certfleet's workers read
the RA on a first GetCACert; scepserver reads its CA at start). After the run every
certfleet enrolment must be in the inventory with source ``scep``. Each round also reports
the server's CPU per enrolment (user + system of its processes, from /proc), which a loaded
machine disturbs far less than the enrolments per second. Run: ``.venv/bin/python bench/scep.py [--count 100]
[--concurrency 4] [--rounds 1]``; needs root for ``unshare -n``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench/ is not a package: the shared helpers live in bench/issuance.py
from issuance import CERTFLEET, certfleet_cli, free_port, running, server_cpu_seconds

SCEPSERVER_CHALLENGE = "bench-secret"


@dataclass(frozen=True)
class Round:
    system: str
    enrolments: int
    failures: int
    seconds: float
    server_cpu: float = 0.0  # user + system CPU seconds of the server's processes meanwhile

    @property
    def per_second(self) -> float:
        return self.enrolments / self.seconds

    @property
    def cpu_ms_per_enrolment(self) -> float:
        """Comparable across runs on a shared machine, where enrolments per second are not."""
        return 1000 * self.server_cpu / max(self.enrolments, 1)


def make_keys(directory: Path, count: int) -> list[Path]:
    """One directory per client (scepclient writes its CSR and self-signed certificate next
    to the key), each with a PEM RSA-2048 key."""
    paths = []
    for index in range(count):
        client = directory / f"c{index}"
        client.mkdir(parents=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        (client / "key.pem").write_bytes(pem)
        paths.append(client / "key.pem")
    return paths


def enrol_all(url: str, challenge: str, fingerprint: str | None, keys: list[Path], concurrency: int) -> Round:
    def enrol(index_key: tuple[int, Path]) -> bool:
        index, key = index_key
        argv = ["scepclient", "-server-url", url, "-challenge", challenge, "-private-key", str(key)]
        argv += ["-certificate", str(key.parent / "cert.pem"), "-cn", f"dev-{index}.bench.test"]
        if fingerprint:
            argv += ["-ca-fingerprint", fingerprint]
        done = subprocess.run(argv, capture_output=True, timeout=120, check=False)
        return done.returncode == 0 and (key.parent / "cert.pem").exists()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(enrol, enumerate(keys)))
    seconds = time.perf_counter() - started
    return Round("", sum(results), results.count(False), seconds)


def ra_fingerprint(url: str) -> str:
    """scepclient encrypts to every certificate of GetCACert unless told which: the RA's
    SHA-256 picks it (certfleet's CA keys are EC, which cannot take key transport)."""
    response = httpx.get(url, params={"operation": "GetCACert"}, timeout=30)
    for cert in pkcs7.load_der_pkcs7_certificates(response.content):
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    raise SystemExit("GetCACert returned no RA certificate")


def warm_up(url: str, connections: int = 8) -> None:
    """GetCACert on fresh connections, so each serve worker has loaded the RA (its key file
    decrypted) before the measured round, as scepserver loads its CA key before it listens."""
    for _ in range(connections):
        httpx.get(url, params={"operation": "GetCACert"}, timeout=30).raise_for_status()


def http_ready(url: str) -> bool:
    try:
        return httpx.get(url, params={"operation": "GetCACaps"}, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def bench_certfleet(work: Path, keys: list[Path], concurrency: int, data: Path) -> Round:
    port, https = free_port(), free_port()
    url = f"http://127.0.0.1:{port}/scep"
    argv = [
        CERTFLEET,
        "serve",
        "--http",
        f"127.0.0.1:{port}",
        "--https",
        f"127.0.0.1:{https}",
        "--data-dir",
        str(data),
    ]
    with running(argv, work / "certfleet-serve.log", lambda: http_ready(url), "certfleet serve") as server:
        challenge = certfleet_cli(
            "scep", "challenge", "create", "--team", "bench", "--uses", str(len(keys)), data=data
        )
        fingerprint = ra_fingerprint(url)
        warm_up(url)
        cpu = server_cpu_seconds(server.pid)
        result = enrol_all(url, challenge.strip(), fingerprint, keys, concurrency)
        cpu = server_cpu_seconds(server.pid) - cpu
    return Round("certfleet", result.enrolments, result.failures, result.seconds, cpu)


def inner_scepserver(work: Path, keys: list[Path], concurrency: int) -> Round:
    """Runs inside ``unshare -n``: loopback up, a fresh scepserver CA, the clients."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    depot = work / "depot"
    subprocess.run(
        ["scepserver", "ca", "-init", "-depot", str(depot), "-keySize", "2048"],
        check=True,
        capture_output=True,
    )
    port = 2016
    url = f"http://127.0.0.1:{port}/scep"
    argv = ["scepserver", "-depot", str(depot), "-port", str(port), "-challenge", SCEPSERVER_CHALLENGE]
    with running(argv, work / "scepserver.log", lambda: http_ready(url), "scepserver") as server:
        cpu = server_cpu_seconds(server.pid)
        result = enrol_all(url, SCEPSERVER_CHALLENGE, None, keys, concurrency)
        cpu = server_cpu_seconds(server.pid) - cpu
    return Round("scepserver", result.enrolments, result.failures, result.seconds, cpu)


def bench_scepserver(work: Path, keys: list[Path], concurrency: int) -> Round:
    listing = work / "keys.json"
    listing.write_text(json.dumps([str(k) for k in keys]))
    argv = [
        "unshare",
        "-n",
        sys.executable,
        __file__,
        "--inner-scepserver",
        str(work),
        "--concurrency",
        str(concurrency),
    ]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=3600).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    return Round(
        "scepserver", figures["enrolments"], figures["failures"], figures["seconds"], figures["server_cpu"]
    )


def scep_records(data: Path) -> int:
    with sqlite3.connect(data / "certfleet.db") as connection:
        (count,) = connection.execute("SELECT count(*) FROM certificates WHERE source = 'scep'").fetchone()
    return int(count)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: on a shared machine, what the figures ran beside."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="enrolments per server and round")
    parser.add_argument("--concurrency", type=int, default=4, help="scepclient processes at a time")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--inner-scepserver", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner_scepserver:
        work = args.inner_scepserver
        keys = [Path(k) for k in json.loads((work / "keys.json").read_text())]
        result = inner_scepserver(work, keys, args.concurrency)
        print(
            json.dumps(
                {
                    "enrolments": result.enrolments,
                    "failures": result.failures,
                    "seconds": result.seconds,
                    "server_cpu": result.server_cpu,
                }
            )
        )
        return
    for tool in ("scepclient", "scepserver", "unshare", "ip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install scep iproute2 util-linux)")
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-scep-") as tmp:
        work = Path(tmp)
        data = work / "data"
        certfleet_cli("init", data=data)
        rounds: list[Round] = []
        for number in range(args.rounds):
            # The order flips every round (A B, B A, ...): drift on a shared machine falls on both.
            order = ("certfleet", "scepserver") if number % 2 == 0 else ("scepserver", "certfleet")
            for system in order:
                round_dir = work / f"{system}-{number}"
                keys = make_keys(round_dir, args.count)
                if system == "certfleet":
                    rounds.append(bench_certfleet(round_dir, keys, args.concurrency, data))
                else:
                    rounds.append(bench_scepserver(round_dir, keys, args.concurrency))
        print(
            f"{'server':<12} {'enrolments':>10} {'failed':>6} {'seconds':>8} {'enrol/s':>8}"
            f" {'cpu ms/enrol':>12}"
        )
        for r in rounds:
            print(
                f"{r.system:<12} {r.enrolments:>10} {r.failures:>6} {r.seconds:>8.2f} {r.per_second:>8.1f}"
                f" {r.cpu_ms_per_enrolment:>12.1f}"
            )
        ours = [r.per_second for r in rounds if r.system == "certfleet"]
        theirs = [r.per_second for r in rounds if r.system == "scepserver"]
        ratio = (sum(ours) / len(ours)) / (sum(theirs) / len(theirs))
        print(f"ratio certfleet / scepserver: {ratio:.2f}x (target >= 1.0x)")
        cpu_ours = sum(r.server_cpu for r in rounds if r.system == "certfleet")
        cpu_theirs = sum(r.server_cpu for r in rounds if r.system == "scepserver")
        done_ours = sum(r.enrolments for r in rounds if r.system == "certfleet")
        done_theirs = sum(r.enrolments for r in rounds if r.system == "scepserver")
        print(
            f"server CPU per enrolment: certfleet {1000 * cpu_ours / max(done_ours, 1):.1f} ms,"
            f" scepserver {1000 * cpu_theirs / max(done_theirs, 1):.1f} ms"
        )
        print(
            "  (user + system CPU of the server's processes per enrolment: GetCACert, GetCACaps and"
            " PKIOperation, plus its background jobs meanwhile; steadier than enrol/s on a busy machine)"
        )
        print(f"load average: {load_before} before, {load_average()} after ({os.cpu_count()} cores)")
        expected = sum(r.enrolments for r in rounds if r.system == "certfleet")
        recorded = scep_records(data)
        print(f"inventory: {recorded} certificates with source scep for {expected} enrolments")
        # scepserver's own failures are reported, not fatal: its file depot loses a race now
        # and then under concurrent enrolments (a client sees "failInfo: badRequest").
        if recorded != expected or any(r.failures for r in rounds if r.system == "certfleet"):
            raise SystemExit("some certfleet enrolments failed or were not recorded")


if __name__ == "__main__":
    main()

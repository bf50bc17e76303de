"""EST enrolment throughput beside REST issuance, on the same ``certfleet serve``, in one run.

One ``certfleet serve`` (SQLite data directory, default workers: one per core), HTTPS. wrk
(``apt-get install wrk``, ``-t2 -cN``) posts the same ECDSA P-256 CSR, alternately:

- EST: ``POST /.well-known/est/simpleenroll``, the CSR as base64 DER
  (``Content-Type: application/pkcs10``), HTTP Basic credentials of ``certfleet est
  credential create``; the answer is a base64 PKCS#7 certs-only.
- REST: ``POST /api/v1/certificates``, the CSR as PEM in JSON, an admin bearer token; the
  answer is JSON with the certificate and its chain.

Both issue through the issuance service (policy gate, serial committed before signing,
inventory record, audit entry, outbox event); EST also checks its credential (one indexed
read and a SHA-256) where REST checks a token (the same). The rounds alternate REST and EST
so drift on the shared machine falls on both, REST first in rounds 1, 3, ... and EST first in
rounds 2, 4, ... so a load that rises or falls through a run favours neither. Printed per
level: the EST/REST ratio of requests per second of each round and their median (target
0.9), and the server's CPU time per certificate (user + system of ``serve`` and its
workers, from /proc), which a machine shared with other work disturbs far less than
wall-clock rates. After the run every certificate a client got must be in the inventory
with source ``est`` or ``issued``. The load average is printed before and after: above
the core count, read the CPU figures.
Run: ``.venv/bin/python bench/est.py [--seconds 10] [--connections 8 64] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench/ is not a package: the shared helpers live in bench/issuance.py
from issuance import (
    CERTFLEET,
    LUA,
    WARMUP_SECONDS,
    Run,
    certfleet_cli,
    free_port,
    make_csr,
    running,
    server_cpu_seconds,
)


def wrk(
    server: int,
    name: str,
    url: str,
    body: str,
    headers: dict[str, str],
    connections: int,
    seconds: int,
    work: Path,
) -> Run:
    """One wrk run against ``url``, with the CPU the ``server`` process tree spent meanwhile."""
    script = work / f"{name}-{connections}.lua"
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    # issuance's script sets Content-Type: application/json first; these lines override it
    script.write_text(LUA % {"body": body, "auth": lines})
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script), url]
    cpu_before = server_cpu_seconds(server)
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    cpu = server_cpu_seconds(server) - cpu_before
    figures = json.loads(next(x for x in reversed(out.splitlines()) if x.startswith("{")))
    failed = figures["non_2xx"] + figures["read"] + figures["write"] + figures["timeout"]
    return Run(
        name,
        connections,
        figures["requests"] - figures["non_2xx"],
        failed,
        figures["duration_us"] / 1e6,
        figures["p50_us"] / 1000,
        figures["p99_us"] / 1000,
        cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per run (default 10)")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 64], help="wrk -c levels")
    parser.add_argument("--rounds", type=int, default=3, help="REST/EST pairs per level (default 3)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")

    csr_pem = make_csr()
    csr_der = x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(serialization.Encoding.DER)
    # wrk's Lua long string keeps line breaks: base64 in one line is as valid and shorter.
    est_body = base64.b64encode(csr_der).decode()
    rest_body = json.dumps({"csr": csr_pem, "profile": "tls-server-client"})

    with tempfile.TemporaryDirectory(prefix="certfleet-bench-est-") as tmp:
        work = Path(tmp)
        data = work / "certfleet"
        certfleet_cli("init", data=data)
        token = certfleet_cli("token", "create", "--team", "bench", "--scope", "admin", data=data).strip()
        basic = certfleet_cli("est", "credential", "create", "--team", "bench", data=data).strip()
        https, http = free_port(), free_port()
        log = work / "serve.log"
        argv = [CERTFLEET, "serve", "--https", f"127.0.0.1:{https}", "--http", f"127.0.0.1:{http}"]
        argv += ["--data-dir", str(data)]
        base = f"https://127.0.0.1:{https}"
        est = (
            "EST simpleenroll",
            f"{base}/.well-known/est/simpleenroll",
            est_body,
            {
                "Content-Type": "application/pkcs10",
                "Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
            },
        )
        rest = (
            "REST issue",
            f"{base}/api/v1/certificates",
            rest_body,
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        runs: list[tuple[int, Run]] = []  # (round, run)
        served = {"EST simpleenroll": 0, "REST issue": 0}
        with running(argv, log, lambda: "certfleet API:" in log.read_text(), "certfleet serve") as serve:
            for name, url, body, headers in (rest, est):
                warm = wrk(serve.pid, name, url, body, headers, args.connections[0], WARMUP_SECONDS, work)
                served[name] += warm.ok
                print(f"warm-up {name}: {warm.ok} ok, {warm.failed} failed", flush=True)
            load_before = os.getloadavg()
            for level in args.connections:
                for round_ in range(args.rounds):
                    for name, url, body, headers in (rest, est) if round_ % 2 == 0 else (est, rest):
                        run = wrk(serve.pid, name, url, body, headers, level, args.seconds, work)
                        served[name] += run.ok
                        runs.append((round_, run))
            load_after = os.getloadavg()
        with sqlite3.connect(data / "certfleet.db") as db:
            stored = dict(db.execute("SELECT source, count(*) FROM certificates GROUP BY source").fetchall())

    print(f"\nEST simpleenroll beside REST issuance, ECDSA P-256 CSR, wrk -t2 -cN -d{args.seconds}s, HTTPS")
    print(
        f"{'system':<18} {'conns':>5} {'ok':>7} {'failed':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'server CPU ms/cert':>19}"
    )
    for _, run in runs:
        print(
            f"{run.system:<18} {run.connections:>5} {run.ok:>7} {run.failed:>6} {run.rate:>8.0f} "
            f"{run.p50_ms:>8.1f} {run.p99_ms:>8.1f} {run.cpu_ms_per_cert or float('nan'):>19.1f}"
        )
    print()
    for level in args.connections:
        at = [r for _, r in runs if r.connections == level]
        by_round = {(i, r.system): r for i, r in runs if r.connections == level}
        pairs = [(by_round[i, "REST issue"], by_round[i, "EST simpleenroll"]) for i in range(args.rounds)]
        ratios = [est_run.rate / rest_run.rate for rest_run, est_run in pairs if rest_run.ok and est_run.ok]
        cpu = {
            name: 1000
            * sum(r.server_cpu or 0.0 for r in at if r.system == name)
            / max(1, sum(r.ok for r in at if r.system == name))
            for name in served
        }
        median = statistics.median(ratios) if ratios else float("nan")
        verdict = "meets" if median >= 0.9 else "misses"
        print(
            f"-c{level}: EST/REST req/s per round {', '.join(f'{r:.2f}' for r in ratios)}, "
            f"median {median:.2f}x ({verdict} the 0.9x target); server CPU per certificate "
            f"EST {cpu['EST simpleenroll']:.1f} ms, REST {cpu['REST issue']:.1f} ms, "
            f"REST/EST {cpu['REST issue'] / cpu['EST simpleenroll']:.2f}x"
        )
    print(
        f"load average (1, 5, 15 min) before {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {' '.join(f'{x:.2f}' for x in load_after)}, on {os.cpu_count()} cores"
    )
    print(
        f"inventory: {served['EST simpleenroll']} EST and {served['REST issue']} REST certificates received; "
        f"stored with source est {stored.get('est', 0)}, issued {stored.get('issued', 0)} "
        "(the listener's own certificate is one of the issued)"
    )
    if stored.get("est", 0) < served["EST simpleenroll"] or stored.get("issued", 0) < served["REST issue"]:
        raise SystemExit("certificates handed out are missing from the inventory")


if __name__ == "__main__":
    main()

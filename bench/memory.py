"""Memory of ``certfleet serve --workers 2`` after an issuance load.

Starts ``init`` and ``serve --workers N`` on a new SQLite data directory, drives REST issuance
with wrk (``-t2 -c8``, P-256 CSR, ``--seconds`` long), then reads every process of the server
(the supervisor and its workers) from /proc: RSS, and PSS (shared pages divided among the
processes that share them: the workers are forked from a parent that has already imported the
application, so much of their RSS is the same pages). Figures in MiB, beside the target of
300 MiB for two workers.

    .venv/bin/python bench/memory.py [--workers 2] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))
TARGET_MIB = 300

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.body = [[%s]]
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kib(pid: int, field: str, source: str) -> int:
    text = Path(f"/proc/{pid}/{source}").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _tree(pid: int) -> list[int]:
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [pid, *children]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        subprocess.run([CERTFLEET, "init", "--data-dir", str(data)], check=True, env=env, capture_output=True)
        token = subprocess.run(
            [CERTFLEET, "token", "create", "--team", "bench", "--scope", "admin", "--data-dir", str(data)],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        ).stdout.strip()
        https, http = _port(), _port()
        log = Path(tmp) / "serve.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [
                    CERTFLEET,
                    "serve",
                    "--https",
                    f"127.0.0.1:{https}",
                    "--http",
                    f"127.0.0.1:{http}",
                    "--workers",
                    str(args.workers),
                    "--data-dir",
                    str(data),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            while "certfleet API:" not in log.read_text():
                if server.poll() is not None:
                    raise SystemExit(log.read_text())
                time.sleep(0.1)
            key = ec.generate_private_key(ec.SECP256R1())
            csr = (
                x509.CertificateSigningRequestBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mem.example.test")]))
                .add_extension(
                    x509.SubjectAlternativeName([x509.DNSName("mem.example.test")]), critical=False
                )
                .sign(key, hashes.SHA256())
            )
            body = json.dumps(
                {"csr": csr.public_bytes(serialization.Encoding.PEM).decode(), "validity_days": 30}
            )
            script = Path(tmp) / "issue.lua"
            script.write_text(LUA % (token, body))
            idle = {pid: _kib(pid, "VmRSS", "status") for pid in _tree(server.pid)}
            out = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    "-c8",
                    f"-d{args.seconds}s",
                    "-s",
                    str(script),
                    f"https://127.0.0.1:{https}/api/v1/certificates",
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
            pids = _tree(server.pid)
            rss = {pid: _kib(pid, "VmRSS", "status") for pid in pids}
            pss = {pid: _kib(pid, "Pss", "smaps_rollup") for pid in pids}
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    print(
        f"serve --workers {args.workers}, after {args.seconds} s of wrk -t2 -c8 issuance "
        f"({rate.group(1) if rate else '?'} certs/s)"
    )
    print(f"{'process':12} {'pid':>8} {'RSS idle':>9} {'RSS':>8} {'PSS':>8}  (MiB)")
    for index, pid in enumerate(pids):
        role = "supervisor" if index == 0 else f"worker {index - 1}"
        print(
            f"{role:12} {pid:8d} {idle.get(pid, 0) / 1024:9.1f} {rss[pid] / 1024:8.1f} {pss[pid] / 1024:8.1f}"
        )
    total_rss, total_pss = sum(rss.values()) / 1024, sum(pss.values()) / 1024
    print(f"{'total':12} {'':8} {'':9} {total_rss:8.1f} {total_pss:8.1f}")
    rss_ratio, pss_ratio = total_rss / TARGET_MIB, total_pss / TARGET_MIB
    print(f"target {TARGET_MIB} MiB: RSS sum {rss_ratio:.2f}x of it, PSS sum {pss_ratio:.2f}x")


if __name__ == "__main__":
    main()

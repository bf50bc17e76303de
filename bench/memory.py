"""Memory of ``certfleet serve --workers 2`` after an issuance load.

Starts ``init`` and ``serve --workers N`` on a new SQLite data directory, drives REST issuance
with wrk (``-t2 -c8``, P-256 CSR, ``--seconds`` long), then reads every process of the server
(the supervisor and its workers) from /proc: threads, the MALLOC_ARENA_MAX a process started
with, RSS when idle and after the load, its anonymous part (heap, not files mapped), and PSS
(shared pages divided among the processes that share them). Figures in MiB, beside the
target of 300 MiB RSS summed over the processes of a two-worker node.

    .venv/bin/python bench/memory.py [--workers 2] [--seconds 20] [--arena-max N]

``--arena-max N`` runs the server with ``MALLOC_ARENA_MAX=N`` (glibc's default on 2 cores is
16, 8 a core) to see what capping malloc's per-thread arenas would save."""

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


def _field(pid: int, name: str) -> str:
    match = re.search(rf"^{name}:\s+(\S+)", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return match.group(1) if match else "?"


def _environ(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode(errors="replace").partition("=")[::2] for e in entries if b"=" in e)


def _tree(pid: int) -> list[int]:
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [pid, *children]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument(
        "--arena-max",
        help="MALLOC_ARENA_MAX for the server (default: unset, glibc's 8 arenas a core)",
    )
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}
    if args.arena_max:
        env["MALLOC_ARENA_MAX"] = args.arena_max
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
            anon = {pid: _kib(pid, "RssAnon", "status") for pid in pids}
            pss = {pid: _kib(pid, "Pss", "smaps_rollup") for pid in pids}
            threads = {pid: _field(pid, "Threads") for pid in pids}
            arenas = {pid: _environ(pid).get("MALLOC_ARENA_MAX", "default") for pid in pids}
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    loadavg = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"serve --workers {args.workers}, after {args.seconds} s of wrk -t2 -c8 issuance "
        f"({rate.group(1) if rate else '?'} certs/s); load average {loadavg}"
    )
    heads = ("threads", "arenas", "RSS idle", "RSS", "anon", "PSS")
    print(f"{'process':12} {'pid':>8} " + " ".join(f"{h:>8}" for h in heads) + "  (MiB)")
    for index, pid in enumerate(pids):
        role = "supervisor" if index == 0 else f"worker {index - 1}"
        print(
            f"{role:12} {pid:8d} {threads[pid]:>8} {arenas[pid]:>8} {idle.get(pid, 0) / 1024:8.1f} "
            f"{rss[pid] / 1024:8.1f} {anon[pid] / 1024:8.1f} {pss[pid] / 1024:8.1f}"
        )
    total_rss, total_pss = sum(rss.values()) / 1024, sum(pss.values()) / 1024
    total_anon = sum(anon.values()) / 1024
    print(f"{'total':12} {'':8} {'':8} {'':8} {'':8} {total_rss:8.1f} {total_anon:8.1f} {total_pss:8.1f}")
    rss_ratio, pss_ratio = total_rss / TARGET_MIB, total_pss / TARGET_MIB
    print(f"target {TARGET_MIB} MiB: RSS sum {rss_ratio:.2f}x of it, PSS sum {pss_ratio:.2f}x")


if __name__ == "__main__":
    main()

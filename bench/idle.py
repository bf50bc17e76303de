"""CPU an idle ``certfleet serve --workers 2`` spends per second: its background jobs.

Runs ``init`` on a new data directory (SQLite, or a new PostgreSQL database with ``--db
postgresql``), starts ``serve --workers N``, lets it settle for ``--warmup`` seconds (the
first rounds make each job's row, the OCSP responder certificates and the first CRLs), then
reads user + system CPU of the supervisor and of every worker from /proc over ``--seconds``
and prints milliseconds of CPU per second for each, and their sum, with the load average.
Worker 0 runs the node's jobs (renewal, campaigns, revocation maintenance, notifications,
heartbeat, ACME recovery); every worker runs the per-process scan job.

    .venv/bin/python bench/idle.py [--db sqlite|postgresql|both] [--seconds 60] [--warmup 15]
        [--py-spy OUT.txt]

``--py-spy OUT`` records worker 0 with py-spy (raw, 100 Hz, ``--idle`` left out so only
samples that run count) over the measured window and writes the collapsed stacks to OUT
(one file per database, suffixed with it)."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CERTFLEET = str(Path(sys.executable).with_name("certfleet"))
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
PG_ADMIN = os.environ.get(
    "CERTFLEET_TEST_PG", "postgresql+psycopg://certfleet:certfleet@127.0.0.1:5432/certfleet_test"
)
TICKS = os.sysconf("SC_CLK_TCK")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    # /proc/PID/stat: the command may hold spaces, so split after its closing parenthesis.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _processes(supervisor: int) -> dict[str, int]:
    """The supervisor and its workers by role (a worker's index is its first argument)."""
    found = {"supervisor": supervisor}
    for child in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split():
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"certfleet.cli._serve_worker" in argv:
            found[f"worker {argv[argv.index(b'certfleet.cli._serve_worker') + 1].decode()}"] = int(child)
    return found


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _pg_database() -> tuple[str, str]:
    import psycopg

    name = f"certfleet_idle_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, name


def _drop(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(database: str, args: argparse.Namespace) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}
    pg_name = None
    with tempfile.TemporaryDirectory(prefix="certfleet-idle-") as tmp:
        data = Path(tmp) / "data"
        db_args: list[str] = []
        if database == "postgresql":
            url, pg_name = _pg_database()
            db_args = ["--db", url]
        try:
            subprocess.run(
                [CERTFLEET, "init", "--data-dir", str(data), *db_args],
                check=True,
                env=env,
                capture_output=True,
            )
            log = Path(tmp) / "serve.log"
            with log.open("wb") as out:
                server = subprocess.Popen(
                    [
                        CERTFLEET,
                        "serve",
                        "--https",
                        f"127.0.0.1:{_port()}",
                        "--http",
                        f"127.0.0.1:{_port()}",
                        "--workers",
                        str(args.workers),
                        "--data-dir",
                        str(data),
                        *db_args,
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
                time.sleep(args.warmup)
                processes = _processes(server.pid)
                spy = None
                if args.py_spy:
                    spy = subprocess.Popen(
                        [
                            PY_SPY,
                            "record",
                            "--pid",
                            str(processes["worker 0"]),
                            "-d",
                            str(args.seconds),
                            "-r",
                            "100",
                            "-f",
                            "raw",
                            "-o",
                            f"{args.py_spy}.{database}",
                            "--nonblocking",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                load_before = _load()
                before = {role: _cpu_seconds(pid) for role, pid in processes.items()}
                started = time.monotonic()
                time.sleep(args.seconds)
                after = {role: _cpu_seconds(pid) for role, pid in processes.items()}
                elapsed = time.monotonic() - started
                if spy is not None:
                    spy.wait()
            finally:
                server.terminate()
                server.wait(timeout=30)
        finally:
            if pg_name is not None:
                _drop(pg_name)
    rates = {role: (after[role] - before[role]) * 1000 / elapsed for role in processes}
    parts = "  ".join(f"{role} {rate:5.1f}" for role, rate in rates.items())
    print(
        f"{database:10s} idle {elapsed:4.0f} s  CPU ms/s: {parts}  total {sum(rates.values()):5.1f}"
        f"  (load {load_before} -> {_load()})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--py-spy", help="record worker 0 into this file (suffixed with the database)")
    args = parser.parse_args()
    for database in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        measure(database, args)


if __name__ == "__main__":
    main()

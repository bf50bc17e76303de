"""One node against two on one PostgreSQL, with the same total number of worker processes:
``serve --workers 2`` (one node) against two ``serve --workers 1`` nodes sharing the database
and the CA (the second node's data directory is a copy of the first's). What is measured is the
cost of coordinating through the database (nonces, leases, serials, the revocation generation,
the audit chain) rather than through one process tree: the target is at most 10 %.

- REST issuance: wrk (``-t2``) posting an ECDSA P-256 CSR, the connections split evenly
  between the nodes (two wrk processes at once for two nodes), as bench/issuance.py does.
- ACME: bench/acme.py's client (new order, http-01 answered in-process, polled every 10 ms,
  finalize, download), concurrent clients each kept alive to one node, alternating nodes.

Beside the rates, CPU per certificate: the certfleet processes' (user+system from /proc) and
the PostgreSQL backends' serving this database (from pg_stat_activity and /proc). The machine
is shared by both, so the rates are bounded by its two cores; the CPU split says how the rate
grows when each node has a machine of its own (see bench/README.md).

    .venv/bin/python bench/multinode.py [--seconds 10] [--connections 8] [--acme-count 60]
                                        [--acme-clients 8] [--skip-acme] [--skip-rest]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import psycopg

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    """A sibling benchmark as a module (bench/ is not a package, and ``acme`` is a library's
    name too)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


issuance = _load("issuance")
acme_bench = _load("acme")

CERTFLEET = issuance.CERTFLEET
PG_ADMIN = os.environ.get(
    "CERTFLEET_TEST_PG", "postgresql+psycopg://certfleet:certfleet@127.0.0.1:5432/certfleet_test"
)


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    https: str
    root: Path


@dataclass
class Layout:
    label: str
    nodes: list[Node]
    token: str
    database: str

    def pids(self) -> list[int]:
        return [n.process.pid for n in self.nodes]


def _cli(*args: str) -> str:
    return subprocess.run(
        [CERTFLEET, *args], check=True, capture_output=True, text=True, env=issuance._env()
    ).stdout


def postgres_cpu_seconds(database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to ``database``."""
    with psycopg.connect(_plain(PG_ADMIN), autocommit=True) as conn:
        pids = [
            r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))
        ]
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / tick
    return found


class CpuMeter:
    """certfleet's and PostgreSQL's CPU seconds over a run."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._nodes = sum(issuance.server_cpu_seconds(pid) for pid in layout.pids())
        self._pg = postgres_cpu_seconds(layout.database)

    def stop(self) -> tuple[float, float]:
        nodes = sum(issuance.server_cpu_seconds(pid) for pid in self._layout.pids()) - self._nodes
        now = postgres_cpu_seconds(self._layout.database)
        pg = sum(seconds - self._pg.get(pid, 0.0) for pid, seconds in now.items())
        return nodes, pg


def start(work: Path, label: str, nodes: int, workers: int, acme_args: list[str]) -> Layout:
    name = f"certfleet_bench_multi_{secrets.token_hex(4)}"
    with psycopg.connect(_plain(PG_ADMIN), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    first = work / label / "n0"
    _cli("init", "--data-dir", str(first), "--db", url)
    started: list[Node] = []
    for index in range(nodes):
        data = work / label / f"n{index}"
        if index:  # the same CA keys, the listener CA's included (made by the first start)
            shutil.copytree(first, data, ignore=shutil.ignore_patterns("*.log"))
        https = issuance.free_port()
        argv = [
            CERTFLEET,
            "serve",
            "--https",
            f"127.0.0.1:{https}",
            "--http",
            f"127.0.0.1:{issuance.free_port()}",
        ]
        argv += ["--workers", str(workers), "--data-dir", str(data), "--db", url, *acme_args]
        log = (work / label / f"n{index}.log").open("wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=issuance._env())
        root = data / "root.pem"
        root.write_text(_cli("ca", "root", "--data-dir", str(data), "--db", url))
        base = f"https://127.0.0.1:{https}"

        def up(base: str = base, root: Path = root) -> bool:
            try:
                return httpx.get(f"{base}/healthz", verify=str(root), timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        issuance.wait_until(up, f"{label} node {index}", process)
        started.append(Node(process, base, root))
    token = _cli(
        "token", "create", "--team", "bench", "--scope", "admin", "--data-dir", str(first), "--db", url
    )
    return Layout(label, started, token.strip(), name)


def stop(layout: Layout) -> None:
    for node in layout.nodes:
        node.process.terminate()
    for node in layout.nodes:
        try:
            node.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()
    with psycopg.connect(_plain(PG_ADMIN), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{layout.database}" WITH (FORCE)')


@dataclass
class Figures:
    layout: str
    kind: str
    ok: int
    failed: int
    seconds: float
    node_cpu: float
    pg_cpu: float
    p99_ms: float | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def line(self) -> str:
        per = (1000 * self.node_cpu / self.ok, 1000 * self.pg_cpu / self.ok) if self.ok else (0.0, 0.0)
        p99 = f"{self.p99_ms:8.1f}" if self.p99_ms is not None else "     n/a"
        return (
            f"{self.kind:<5} {self.layout:<20} {self.rate:9.1f} {self.ok:7d} {self.failed:6d} {p99}"
            f" {per[0]:12.1f} {per[1]:10.1f}"
        )


def rest(layout: Layout, work: Path, connections: int, seconds: int) -> Figures:
    body = {"csr": issuance.make_csr()}
    headers = {"Authorization": f"Bearer {layout.token}"}
    share = max(1, connections // len(layout.nodes))
    issuance.wrk(
        f"{layout.nodes[0].https}/api/v1/certificates", body, headers, share, issuance.WARMUP_SECONDS, work
    )
    results: list[dict[str, int]] = []
    meter = CpuMeter(layout)

    def one(node: Node) -> None:
        scratch = work / f"wrk-{node.process.pid}"
        scratch.mkdir(exist_ok=True)
        results.append(
            issuance.wrk(f"{node.https}/api/v1/certificates", body, headers, share, seconds, scratch)
        )

    threads = [threading.Thread(target=one, args=(n,)) for n in layout.nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    node_cpu, pg_cpu = meter.stop()
    ok = sum(r["requests"] - r["non_2xx"] for r in results)
    failed = sum(r["non_2xx"] + r["read"] + r["write"] + r["timeout"] for r in results)
    duration = max(r["duration_us"] for r in results) / 1e6
    p99 = max(r["p99_us"] for r in results) / 1000
    return Figures(layout.label, "REST", ok, failed, duration, node_cpu, pg_cpu, p99)


def acme(layout: Layout, responder: Any, clients: int, count: int) -> Figures:
    directory = [f"{n.https}/acme/directory" for n in layout.nodes]
    verify = [issuance_ssl(n.root) for n in layout.nodes]
    pool = [
        acme_bench.Client(directory[i % len(directory)], verify[i % len(verify)], responder)
        for i in range(clients)
    ]
    pool[0].issue("warm.bench.test")
    failures: list[str] = []
    meter = CpuMeter(layout)
    started = time.perf_counter()

    def work(index: int) -> int:
        try:
            pool[index % clients].issue(f"c{index}-{secrets.token_hex(3)}.bench.test")
            return 1
        except RuntimeError as exc:
            failures.append(str(exc)[:200])
            return 0

    # One certificate at a time per client: client i takes indices i, i + clients, ...
    def lane(lane_index: int) -> int:
        return sum(work(i) for i in range(lane_index, count, clients))

    with ThreadPoolExecutor(clients) as executor:
        ok = sum(executor.map(lane, range(clients)))
    elapsed = time.perf_counter() - started
    node_cpu, pg_cpu = meter.stop()
    if failures:
        print(f"  {layout.label} ACME failures: {failures[:3]}", file=sys.stderr)
    return Figures(layout.label, "ACME", ok, len(failures), elapsed, node_cpu, pg_cpu)


def issuance_ssl(root: Path) -> Any:
    import ssl

    return ssl.create_default_context(cafile=str(root))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections in all (default 8)")
    parser.add_argument(
        "--acme-count", type=int, default=60, help="ACME certificates per layout (default 60)"
    )
    parser.add_argument("--acme-clients", type=int, default=8, help="concurrent ACME clients (default 8)")
    parser.add_argument("--skip-acme", action="store_true")
    parser.add_argument("--skip-rest", action="store_true")
    args = parser.parse_args()
    if not args.skip_rest and shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    responder = acme_bench.Responder()
    dns, challtestsrv = acme_bench.start_challtestsrv()
    acme_args = ["--acme-resolver", dns, "--acme-http01-port", str(responder.port)]
    figures: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="bench-multinode-") as tmp:
        work = Path(tmp)
        try:
            for label, nodes, workers in (("1 node x 2 workers", 1, 2), ("2 nodes x 1 worker", 2, 1)):
                layout = start(work, label.replace(" ", "_"), nodes, workers, acme_args)
                layout.label = label
                try:
                    if not args.skip_rest:
                        figures.append(rest(layout, work, args.connections, args.seconds))
                        print(figures[-1].line(), flush=True)
                    if not args.skip_acme:
                        figures.append(acme(layout, responder, args.acme_clients, args.acme_count))
                        print(figures[-1].line(), flush=True)
                finally:
                    stop(layout)
        finally:
            challtestsrv.terminate()
            challtestsrv.wait()
    print(f"\nload average {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    print("kind  layout                  cert/s      ok failed  p99 ms node CPU ms/cert PG CPU ms/cert")
    for row in figures:
        print(row.line())
    for kind in ("REST", "ACME"):
        pair = [f for f in figures if f.kind == kind]
        if len(pair) == 2 and pair[0].rate and pair[0].ok and pair[1].ok:
            ratio = pair[1].rate / pair[0].rate
            verdict = "met" if ratio >= 0.9 else "missed"
            print(f"{kind}: two nodes / one node = {ratio:.2f} in cert/s (target >= 0.90: {verdict})")
            one, two = ((f.node_cpu + f.pg_cpu) / f.ok for f in pair)
            print(f"{kind}: CPU per certificate (nodes + PostgreSQL), two nodes / one node = {two / one:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

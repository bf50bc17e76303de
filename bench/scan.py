"""Certificate discovery throughput: certfleet against sslyze and sslscan, same endpoints,
same run.

One nginx (Debian) serves N TLS listeners on 127.0.0.1 (300 by default, as issue 11 measures),
each with its own ECDSA P-256 leaf and the intermediate. Each tool scans all N, doing the least
work that still fetches the certificate:

1. ``certfleet scan net @targets`` (the CLI: interpreter start, scan, findings, and the
   inventory write to SQLite included), ``--concurrency 500 --per-host 500``, into a fresh
   data directory (N + 1 new certificates, 2N locations, N ``discovered-unknown`` events, the
   run and its audit entry), then again into the same one (a rescan: all known).
2. The same scan in-process (``DiscoveryService.scan_network``, no interpreter start-up),
   split into scan, judging and the inventory write, so the write's cost is visible alone.
3. certfleet's scanner alone, in-process (no database): the ceiling of the CLI.
4. ``certfleet version``: the CLI's start-up alone; and ``certfleet scan net`` of one closed
   port: what a scan costs besides its handshakes (imports, the database, the run's records).
5. sslyze (PyPI, its own virtualenv: it pins ``cryptography<47``): ``--certinfo
   --mozilla_config disable``; its CLI has no concurrency knob (10 servers at once).
6. sslscan (Debian): every ``--no-*`` switch it has, ``--show-certificate``, one
   ``--targets`` file. It cannot skip its protocol-version probes and shows the leaf only.

The certfleet figures are the median of ``--repeat`` runs; the peers run once each
(``--peer-repeat``). The last column is how many times faster than ``sslyze --certinfo``
each is (issue 11's target for the CLI: at least 10).

Run: ``.venv/bin/python bench/scan.py [--count 300] [--repeat 3] [--skip sslscan]``.
Needs ``python3 -m venv /tmp/sslyze-venv && /tmp/sslyze-venv/bin/pip install sslyze`` and
``apt-get install sslscan nginx``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.discovery.nginx import Nginx, free_ports, tls_server  # noqa: E402
from tests.discovery.pki import Pki, key_pem, pem  # noqa: E402

CERTFLEET = REPO / ".venv" / "bin" / "certfleet"
PYTHON = REPO / ".venv" / "bin" / "python"
SSLYZE = Path("/tmp/sslyze-venv/bin/sslyze")

_SCANNER_ONLY = """
import sys, time
from certfleet.discovery import NetScanOptions, NetworkScanner, expand_endpoints, read_targets
endpoints = expand_endpoints(read_targets(["@" + sys.argv[1]]), (443,))
start = time.perf_counter()
outcomes = NetworkScanner(NetScanOptions(concurrency=500, per_host=500, timeout_seconds=10)).run(endpoints)
elapsed = time.perf_counter() - start
print(elapsed, sum(1 for o in outcomes if o.ok and len(o.observation.chain) == 2))
"""

# The CLI's scan in-process, phase by phase: where the time goes once the interpreter is up.
_PHASES = """
import os, sys, time
from pathlib import Path
from certfleet.app import open_discovery
from certfleet.config import load_settings
from certfleet.discovery import NetScanOptions, NetworkScanner, parse_ports
from certfleet.services import _discovery_judge, _discovery_record
from certfleet.services.discovery import NetScanRequest, parse_trust_bundle

targets, root, data = sys.argv[1:4]
phases = {}

def timed(owner, name, label):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases[label] = time.perf_counter() - start
    setattr(owner, name, wrapper)

timed(NetworkScanner, "run", "scan")
timed(_discovery_judge.ScanJudge, "trust", "trust")  # read before the scan, judging's all the same
timed(_discovery_judge.ScanJudge, "network", "judge")
timed(_discovery_record.ScanRecorder, "commit", "write")
platform = open_discovery(load_settings(os.environ, data_dir=Path(data)))  # as the CLI opens it
request = NetScanRequest(
    targets=("@" + targets,),
    ports=parse_ports("443"),
    options=NetScanOptions(timeout_seconds=10, concurrency=500, per_host=500),
    trust=tuple(parse_trust_bundle(Path(root).read_bytes(), root)),
)
for label in ("new", "rescan"):
    start, cpu = time.perf_counter(), time.process_time()
    report = platform.discovery.scan_network(request, actor="bench")
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    judge = phases["trust"] + phases["judge"]
    print(label, total, phases["scan"], judge, phases["write"], cpu, report.run.certificates_new)
platform.close()
"""


class Run(NamedTuple):
    seconds: float  # wall clock
    rss_kib: int  # peak resident memory (wait4)
    cpu_seconds: float  # user + system: steadier than wall on a shared machine
    output: str


def _note(done: Run) -> str:
    return f"cpu {done.cpu_seconds:.2f} s, RSS {done.rss_kib / 1024:.0f} MiB"


def timed(argv: list[str], **kwargs: object) -> Run:
    """Run ``argv``; return its wall and CPU seconds, peak RSS and output."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, text=True, **kwargs)  # type: ignore[call-overload]
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        err = process.stderr.read() if process.stderr else ""
        out.seek(0)
        text = out.read()
    if process.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed ({process.returncode}): {err[-2000:]}")
    return Run(elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="certfleet runs per figure (median)")
    parser.add_argument("--peer-repeat", type=int, default=1, help="sslyze and sslscan runs (median)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        help="certfleet, phases, inprocess, startup, sslyze or sslscan",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="certfleet-bench-scan-"))
    try:
        run(work, args.count, max(1, args.repeat), max(1, args.peer_repeat), set(args.skip))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _chains_in_cli_report(out: str) -> int:
    report = json.loads(out)
    failures: dict[str, int] = {}
    for o in report["outcomes"]:
        if o["status"] != "ok":
            failures[o["reason"]] = failures.get(o["reason"], 0) + 1
    if failures:
        print("  certfleet failures:", failures)
    return sum(1 for o in report["outcomes"] if o["status"] == "ok" and len(o["chain"]) == 2)


def _sslyze_chains(path: Path) -> int:
    ok = 0
    for server in json.loads(path.read_text())["server_scan_results"]:
        try:
            deployments = server["scan_result"]["certificate_info"]["result"]["certificate_deployments"]
            ok += len(deployments[0]["received_certificate_chain"]) == 2
        except (KeyError, TypeError, IndexError):
            continue
    return ok


def run(work: Path, count: int, repeat: int, peer_repeat: int, skip: set[str]) -> None:
    pki = Pki("Bench")
    certs = work / "certs"
    certs.mkdir()
    servers, listens = [], []
    ports = free_ports(count)
    for index in range(count):
        leaf = pki.leaf(["127.0.0.1", f"host{index}.bench.test"])
        (certs / f"{index}.crt").write_bytes(pem(leaf.cert, pki.intermediate.cert))
        (certs / f"{index}.key").write_bytes(key_pem(leaf.key))
        port = ports[index]
        listens.append(("127.0.0.1", port))
        servers.append(tls_server(f"127.0.0.1:{port}", certs / f"{index}.crt", certs / f"{index}.key"))
    root = work / "root.pem"
    root.write_bytes(pem(pki.root.cert))
    targets = work / "targets.txt"
    targets.write_text("".join(f"{h}:{p}\n" for h, p in listens))
    nginx = Nginx(work / "nginx", servers, listens)
    nginx.start(timeout_seconds=60)
    load_at_start = _loadavg()
    # name -> (seconds, endpoints with their chain or None, note)
    results: dict[str, tuple[float, int | None, str]] = {}

    def fresh_data_dir(name: str) -> Path:
        data = work / name
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run([str(CERTFLEET), "init", "--data-dir", str(data)], check=True, capture_output=True)
        return data

    try:
        if "certfleet" not in skip:
            first: list[tuple[float, int | None, str]] = []
            again: list[tuple[float, int | None, str]] = []
            argv: list[str] = []
            for attempt in range(repeat):
                data = fresh_data_dir(f"cli{attempt}")
                argv = [
                    str(CERTFLEET),
                    "scan",
                    "net",
                    f"@{targets}",
                    "--concurrency",
                    "500",
                    "--per-host",
                    "500",
                    "--timeout",
                    "10",
                    "--trust",
                    str(root),
                    "--quiet",
                    "--format",
                    "json",
                    "--data-dir",
                    str(data),
                ]
                done = timed(argv)
                first.append((done.seconds, _chains_in_cli_report(done.output), _note(done)))
                done = timed(argv)
                again.append((done.seconds, _chains_in_cli_report(done.output), _note(done)))
            for label, runs in (("first scan, all new", first), ("rescan, all known", again)):
                results[f"certfleet scan net CLI ({label})"] = statistics.median_low(runs)
            print("certfleet CLI runs (s):", [round(r[0], 2) for r in first], [round(r[0], 2) for r in again])
            print("  command:", " ".join(argv).replace(str(work), "$WORK"))
        if "phases" not in skip:
            rows: dict[str, list[list[float]]] = {"new": [], "rescan": []}
            new = 0
            for attempt in range(repeat):
                data = fresh_data_dir(f"phases{attempt}")
                out = timed([str(PYTHON), "-c", _PHASES, str(targets), str(root), str(data)]).output
                for line in out.splitlines():
                    label, *figures = line.split()
                    rows[label].append([float(f) for f in figures[:5]])
                    new = max(new, int(figures[5]))
            for label, runs in rows.items():
                total, scan, judge, write, cpu = statistics.median_low(runs)
                note = f"scan {scan:.2f} + judge {judge:.2f} + write {write:.2f} s; cpu {cpu:.2f} s"
                what = f"first scan, {new} new" if label == "new" else "rescan"
                results[f"certfleet scan_network in-process ({what})"] = (total, None, note)
        if "inprocess" not in skip:
            scanner_runs: list[tuple[float, int | None, str]] = []
            for _ in range(repeat):
                done = timed([str(PYTHON), "-c", _SCANNER_ONLY, str(targets)])
                elapsed, ok = done.output.split()
                scanner_runs.append((float(elapsed), int(ok), f"RSS {done.rss_kib / 1024:.0f} MiB"))
            results["certfleet scanner only (in-process, ceiling)"] = statistics.median_low(scanner_runs)
        if "startup" not in skip:
            startups = [timed([str(CERTFLEET), "version"]) for _ in range(repeat)]
            done = statistics.median_low(startups)
            results["certfleet version (CLI start-up alone)"] = (done.seconds, None, _note(done))
            # What a scan pays before and after its handshakes: imports, settings, the
            # database opened, the run recorded as running then completed, one refused port.
            data = fresh_data_dir("startup")
            closed = f"127.0.0.1:{free_ports(1)[0]}"
            scan_one = [str(CERTFLEET), "scan", "net", closed, "--timeout", "1", "--quiet"]
            scan_one += ["--format", "json", "--data-dir", str(data)]
            done = statistics.median_low([timed(scan_one) for _ in range(repeat)])
            results["certfleet scan net, one closed port (scan start-up)"] = (done.seconds, None, _note(done))
        if "sslyze" not in skip:
            out_json = work / "sslyze.json"
            argv = [
                str(SSLYZE),
                "--certinfo",
                "--mozilla_config",
                "disable",
                "--quiet",
                f"--json_out={out_json}",
                f"--targets_in={targets}",
            ]
            peer_runs: list[tuple[float, int | None, str]] = []
            for _ in range(peer_repeat):
                done = timed(argv)
                peer_runs.append((done.seconds, _sslyze_chains(out_json), _note(done)))
            results["sslyze --certinfo"] = statistics.median_low(peer_runs)
            print("  command:", " ".join(argv).replace(str(work), "$WORK"))
        if "sslscan" not in skip:
            argv = [
                "sslscan",
                "--no-colour",
                "--show-certificate",
                "--no-ciphersuites",
                "--no-renegotiation",
                "--no-compression",
                "--no-heartbleed",
                "--no-groups",
                "--no-fallback",
                "--no-check-certificate",
                f"--targets={targets}",
            ]
            scan_runs: list[tuple[float, int | None, str]] = []
            for _ in range(peer_repeat):
                done = timed(argv)
                scan_runs.append((done.seconds, done.output.count("Subject:"), _note(done)))
            results["sslscan (no-* switches, leaf only)"] = statistics.median_low(scan_runs)
            print("  command:", " ".join(argv).replace(str(work), "$WORK"))
    finally:
        nginx.stop()
    report(count, results, (load_at_start, _loadavg()))


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def report(count: int, results: dict[str, tuple[float, int | None, str]], load: tuple[str, str]) -> None:
    peer = results.get("sslyze --certinfo")
    print()
    print(
        f"load average at start {load[0]}, at end {load[1]} (2 cores: above ~1.5 wall figures are inflated)"
    )
    print(f"{count} TLS endpoints (nginx on 127.0.0.1, ECDSA P-256 leaf + intermediate each)")
    header = f"{'tool':58} {'chains':>6} {'seconds':>8} {'endpoints/s':>11} {'vs sslyze':>9}  notes"
    print(header)
    for name, (elapsed, ok, note) in results.items():
        rate = f"{count / elapsed:11.1f}" if ok is not None or "in-process" in name else f"{'-':>11}"
        ratio = f"{peer[0] / elapsed:8.2f}x" if peer else f"{'-':>9}"
        chains = str(ok) if ok is not None else "-"
        print(f"{name:58} {chains:>6} {elapsed:8.2f} {rate} {ratio}  {note}")
    cli = results.get("certfleet scan net CLI (first scan, all new)")
    if peer and cli:
        print()
        print(
            f"certfleet CLI (start-up, scan and inventory write) is {peer[0] / cli[0]:.1f}x as fast as "
            "sslyze --certinfo (issue 11 target: 10x)"
        )
        cpu_cli, cpu_peer = _cpu_seconds(cli[2]), _cpu_seconds(peer[2])
        if cpu_cli and cpu_peer:
            print(
                f"by CPU seconds (steadier on a shared machine): {cpu_cli:.2f} s against sslyze's "
                f"{cpu_peer:.2f} s, {cpu_peer / cpu_cli:.1f}x; sslyze's wall time includes its waits"
            )


def _cpu_seconds(note: str) -> float | None:
    _, found, rest = note.partition("cpu ")
    if not found:
        return None
    try:
        return float(rest.split()[0])
    except (ValueError, IndexError):
        return None


if __name__ == "__main__":
    main()

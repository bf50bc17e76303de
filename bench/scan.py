"""Certificate discovery throughput: certfleet against sslyze and sslscan, same endpoints,
same run.

One nginx (Debian) serves N TLS listeners on 127.0.0.1, each with its own ECDSA P-256 leaf
and the intermediate. Each tool scans all N, doing the least work that still fetches the
certificate:

1. ``certfleet scan net @targets`` (the CLI: interpreter start, scan, findings, and the
   inventory write to SQLite included), ``--concurrency 500 --per-host 500``.
2. certfleet's scanner alone, in-process (no database): the ceiling of the CLI.
3. sslyze (PyPI, its own virtualenv: it pins ``cryptography<47``): ``--certinfo
   --mozilla_config disable``; its CLI has no concurrency knob (10 servers at once).
4. sslscan (Debian): every ``--no-*`` switch it has, ``--show-certificate``, one
   ``--targets`` file. It cannot skip its protocol-version probes and shows the leaf only.

Run: ``.venv/bin/python bench/scan.py [--count 500]`` (about two minutes, most of it sslscan).
Needs ``python3 -m venv /tmp/sslyze-venv && /tmp/sslyze-venv/bin/pip install sslyze`` and
``apt-get install sslscan nginx``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.discovery.nginx import Nginx, free_ports, tls_server  # noqa: E402
from tests.discovery.pki import Pki, key_pem, pem  # noqa: E402

CERTFLEET = REPO / ".venv" / "bin" / "certfleet"
PYTHON = REPO / ".venv" / "bin" / "python"
SSLYZE = Path("/tmp/sslyze-venv/bin/sslyze")

_IN_PROCESS = """
import sys, time, resource
from certfleet.discovery import NetScanOptions, NetworkScanner, expand_endpoints, read_targets
endpoints = expand_endpoints(read_targets(["@" + sys.argv[1]]), (443,))
start = time.perf_counter()
outcomes = NetworkScanner(NetScanOptions(concurrency=500, per_host=500, timeout_seconds=10)).run(endpoints)
elapsed = time.perf_counter() - start
print(elapsed, sum(1 for o in outcomes if o.ok and len(o.observation.chain) == 2))
"""


def timed(
    argv: list[str], **kwargs: object
) -> tuple[float, int, subprocess.CompletedProcess[str] | None, str]:
    """Run ``argv``; return wall seconds, peak RSS in KiB (wait4) and the output."""
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
    return elapsed, usage.ru_maxrss, None, text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--skip", action="append", default=[], help="certfleet, inprocess, sslyze or sslscan")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="certfleet-bench-scan-"))
    try:
        run(work, args.count, set(args.skip))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, count: int, skip: set[str]) -> None:
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
    (work / "root.pem").write_bytes(pem(pki.root.cert))
    targets = work / "targets.txt"
    targets.write_text("".join(f"{h}:{p}\n" for h, p in listens))
    nginx = Nginx(work / "nginx", servers, listens)
    nginx.start(timeout_seconds=60)
    results: dict[str, tuple[float, int]] = {}
    try:
        if "certfleet" not in skip:
            data = work / "data"
            subprocess.run([str(CERTFLEET), "init", "--data-dir", str(data)], check=True, capture_output=True)
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
                str(work / "root.pem"),
                "--quiet",
                "--format",
                "json",
                "--data-dir",
                str(data),
            ]
            elapsed, rss, _, out = timed(argv)
            report = json.loads(out)
            ok = sum(1 for o in report["outcomes"] if o["status"] == "ok" and len(o["chain"]) == 2)
            failures = {}
            for o in report["outcomes"]:
                if o["status"] != "ok":
                    failures[o["reason"]] = failures.get(o["reason"], 0) + 1
            if failures:
                print("  certfleet failures:", failures)
            results["certfleet scan net (CLI, with inventory)"] = (elapsed, ok)
            print(f"certfleet: {ok}/{count} chains in {elapsed:.2f} s, peak RSS {rss / 1024:.0f} MiB")
            print("  command:", " ".join(argv).replace(str(work), "$WORK"))
        if "inprocess" not in skip:
            _, rss, _, out = timed([str(PYTHON), "-c", _IN_PROCESS, str(targets)])
            elapsed, ok = out.split()
            results["certfleet scanner only (in-process)"] = (float(elapsed), int(ok))
            memory = f"peak RSS {rss / 1024:.0f} MiB"
            print(f"certfleet scanner only: {ok}/{count} in {float(elapsed):.2f} s, {memory}")
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
            elapsed, rss, _, _ = timed(argv)
            doc = json.loads(out_json.read_text())
            ok = 0
            for server in doc["server_scan_results"]:
                try:
                    deployments = server["scan_result"]["certificate_info"]["result"][
                        "certificate_deployments"
                    ]
                    ok += len(deployments[0]["received_certificate_chain"]) == 2
                except (KeyError, TypeError, IndexError):
                    continue
            results["sslyze --certinfo"] = (elapsed, ok)
            print(f"sslyze: {ok}/{count} chains in {elapsed:.2f} s, peak RSS {rss / 1024:.0f} MiB")
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
            elapsed, rss, _, out = timed(argv)
            ok = out.count("Subject:")
            if ok < count:
                print(out[-1500:])
            results["sslscan (no-* switches)"] = (elapsed, ok)
            print(
                f"sslscan: {ok}/{count} leaf certificates in {elapsed:.2f} s, peak RSS {rss / 1024:.0f} MiB"
            )
            print("  command:", " ".join(argv).replace(str(work), "$WORK"))
    finally:
        nginx.stop()
    baseline = results.get("certfleet scan net (CLI, with inventory)")
    print()
    print(f"{'tool':45} {'endpoints':>9} {'seconds':>8} {'endpoints/s':>11} {'certfleet CLI / tool':>21}")
    for name, (elapsed, ok) in results.items():
        rate = count / elapsed
        ratio = f"{(count / baseline[0]) / rate:.2f}" if baseline else "-"
        print(f"{name:45} {ok:>9} {elapsed:>8.2f} {rate:>11.1f} {ratio:>21}")


if __name__ == "__main__":
    main()

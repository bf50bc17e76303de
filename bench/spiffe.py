"""The agent's Workload API at fleet scale: 10,000 registration entries on one agent, and
FetchX509SVID latency under 100 concurrent streams.

The agent runs in a process of its own (``python bench/spiffe.py agent ...``, started by this
script), so its RSS is the agent's alone; the workload clients run in this process, over the
real Unix socket, attested like any workload. The server side is an in-process signer in the
agent's process (tests/agent/workload/fakes.py: a throwaway CA signing each CSR, ES256 JWTs),
so the figures are the agent's: key generation, CSRs, the cache, attestation, gRPC. The
certfleet server's own issuance rate is bench/issuance.py's.

1. **issue**: the agent starts with N entries (each for a uid of its own, one for this
   process) and makes a P-256 key and CSR per entry, gets the SVIDs (batches of 500, as
   from the server) and caches them: time until all N are cached, and the agent's RSS.
2. **rotate**: the agent's clock moves past half of every SVID's lifetime: time until all N
   are rotated.
3. **latency, open streams**: C workloads hold a FetchX509SVID stream open each (as py-spiffe's
   X509Source does, each its own connection), and one more workload calls FetchX509SVID over
   and over for D seconds; each call's time to its first response is one sample (the agent
   attests the caller and answers from its cache).
4. **latency, saturated**: the C clients themselves call FetchX509SVID back to back for D
   seconds (C calls always in flight): throughput, and latency at that throughput.

Run: ``.venv/bin/python bench/spiffe.py [--entries 10000] [--streams 100] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
# bench/ is first on the path when run as a script, and bench/acme.py would hide the acme
# library the agent imports: the repository root instead (for tests.agent.workload.fakes).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]


def _rss_kib(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}


# -- the agent process ---------------------------------------------------------------------------


def agent(socket_path: str, entries: int) -> None:
    """Serve the Workload API over N entries; obey commands on stdin, answer on stdout."""
    from certfleet.agent.workload import WorkloadEndpoint
    from tests.agent.workload.fakes import FakeSvidSource
    from tests.conftest import FakeClock

    clock = FakeClock(dt.datetime.now(dt.UTC))
    source = FakeSvidSource(clock)
    python = os.path.realpath(sys.executable)
    source.add("bench-client", "bench/client", "unix:uid:0", f"unix:path:{python}")
    for i in range(entries - 1):
        source.add(f"e{i}", f"ns/w{i}", f"unix:uid:{100_000 + i}", ttl_seconds=3600)
    endpoint = WorkloadEndpoint(Path(socket_path), source, clock, background=False)
    started = time.perf_counter()
    endpoint.start()  # its first pass issues every SVID before the socket is announced
    issued = time.perf_counter() - started
    assert endpoint.cache is not None
    print(json.dumps({"issued": len(endpoint.cache), "seconds": issued, **_rss_kib(os.getpid())}), flush=True)
    for line in sys.stdin:
        if line.strip() == "rotate":
            before = sum(source.issued.values())
            clock.advance(dt.timedelta(minutes=31))
            started = time.perf_counter()
            endpoint.refresh_now(600)
            seconds = time.perf_counter() - started
            rotated = sum(source.issued.values()) - before
            print(json.dumps({"rotated": rotated, "seconds": seconds, **_rss_kib(os.getpid())}), flush=True)
        elif line.strip() == "rss":
            print(json.dumps(_rss_kib(os.getpid())), flush=True)
    endpoint.stop()


# -- the clients -----------------------------------------------------------------------------------


def _latencies(socket_path: str, streams: int, seconds: float) -> list[float]:
    from spiffe._proto import workload_pb2, workload_pb2_grpc

    header = (("workload.spiffe.io", "true"),)
    samples: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    ready = threading.Barrier(streams)

    def client() -> None:
        with grpc.insecure_channel(f"unix:{socket_path}") as channel:
            stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
            next(stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=header)).svids[0]  # warm up
            ready.wait()
            mine = []
            while time.monotonic() < deadline:
                started = time.perf_counter()
                call = stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=header)
                response = next(call)
                mine.append(time.perf_counter() - started)
                assert response.svids[0].spiffe_id == "spiffe://example.org/bench/client"
                call.cancel()
            with lock:
                samples.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def _open_streams(socket_path: str, streams: int) -> tuple[list[grpc.Channel], list[object]]:
    from spiffe._proto import workload_pb2, workload_pb2_grpc

    header = (("workload.spiffe.io", "true"),)
    channels, calls = [], []
    for _ in range(streams):
        channel = grpc.insecure_channel(f"unix:{socket_path}")
        stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
        call = stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=header)
        next(call)  # the stream is open and has its first set
        channels.append(channel)
        calls.append(call)
    return channels, calls


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="cf-bench-spiffe-"))
    socket_path = str(base / "run" / "agent.sock")
    process = subprocess.Popen(
        [sys.executable, __file__, "agent", socket_path, str(args.entries)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        issued = json.loads(process.stdout.readline())
        print(
            f"issue:   {issued['issued']:,} SVIDs (P-256 keys made by the agent) "
            f"in {issued['seconds']:.1f} s "
            f"({issued['issued'] / issued['seconds']:,.0f}/s); agent RSS {issued['VmRSS'] / 1024:.0f} MiB "
            f"(peak {issued['VmHWM'] / 1024:.0f} MiB)"
        )
        process.stdin.write("rotate\n")
        process.stdin.flush()
        rotated = json.loads(process.stdout.readline())
        print(
            f"rotate:  {rotated['rotated']:,} SVIDs in {rotated['seconds']:.1f} s; agent RSS "
            f"{rotated['VmRSS'] / 1024:.0f} MiB (peak {rotated['VmHWM'] / 1024:.0f} MiB)"
        )
        channels, calls = _open_streams(socket_path, args.streams)
        quiet = _latencies(socket_path, 1, args.seconds)
        for call in calls:
            call.cancel()  # type: ignore[attr-defined]
        for channel in channels:
            channel.close()
        print(
            f"latency: FetchX509SVID to first response with {args.streams} streams open, one caller: "
            f"{len(quiet):,} calls: p50 {_pct(quiet, 0.50):.1f} ms, p90 {_pct(quiet, 0.90):.1f} ms, "
            f"p99 {_pct(quiet, 0.99):.1f} ms, max {max(quiet) * 1000:.1f} ms"
        )
        samples = _latencies(socket_path, args.streams, args.seconds)
        process.stdin.write("rss\n")
        process.stdin.flush()
        rss = json.loads(process.stdout.readline())
        print(
            f"saturated: FetchX509SVID back to back from {args.streams} clients, "
            f"{len(samples):,} calls in {args.seconds:.0f} s ({len(samples) / args.seconds:,.0f}/s): "
            f"p50 {_pct(samples, 0.50):.1f} ms, p90 {_pct(samples, 0.90):.1f} ms, "
            f"p99 {_pct(samples, 0.99):.1f} ms, max {max(samples) * 1000:.1f} ms; "
            f"agent RSS {rss['VmRSS'] / 1024:.0f} MiB"
        )
    finally:
        process.stdin.close()
        process.wait(60)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "agent":
        agent(sys.argv[2], int(sys.argv[3]))
    else:
        main()

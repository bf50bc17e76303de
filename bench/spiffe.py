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

With ``--server``, the same with the real thing: a ``certfleet serve`` (SQLite) with N
entries registered over its REST API (setup), and an enrolled ``certfleet agent run`` whose
SVIDs the server issues through its one issuance service (policy, inventory, audit): time
from the agent's start until its log says all N are cached, its RSS, and the open-streams
latency.

Run: ``.venv/bin/python bench/spiffe.py [--entries 10000] [--streams 100] [--seconds 20]
[--server]`` (the in-process form about a minute here).
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


# -- with the real certfleet server ------------------------------------------------------------------


def _create_entries(server: object, host: str, count: int, python: str) -> None:
    """N entries over the admin REST API (setup, not measured), four requests in flight."""
    import concurrent.futures
    import ssl

    import httpx

    pem = httpx.get(f"http://127.0.0.1:{server.http_port}/ca/root.pem", trust_env=False).content  # type: ignore[attr-defined]
    context = ssl.create_default_context(cadata=pem.decode())
    parent = f"spiffe://example.org/agent/{host}"
    bodies = [{"spiffe_id": "spiffe://example.org/bench/client", "parent_id": parent,
               "selectors": ["unix:uid:0", f"unix:path:{python}"]}]  # fmt: skip
    bodies += [
        {"spiffe_id": f"spiffe://example.org/ns/w{i}", "parent_id": parent,
         "selectors": [f"unix:uid:{100_000 + i}"]}
        for i in range(count - 1)
    ]  # fmt: skip
    with httpx.Client(
        base_url=server.https,  # type: ignore[attr-defined]
        verify=context,
        headers={"Authorization": f"Bearer {server.admin_token}"},  # type: ignore[attr-defined]
        trust_env=False,
        timeout=60,
    ) as client:

        def post(body: dict[str, object]) -> None:
            response = client.post("/api/v1/spiffe/entries", json=body)
            assert response.status_code == 201, response.text

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(post, bodies))


def with_server(entries: int, streams: int, seconds: float) -> None:
    """The same measures with a real ``certfleet serve`` issuing through its one issuance
    service, and a real ``certfleet agent run`` (its log says when all N are cached)."""
    import re

    from tests.agent.peers import CERTFLEET, CertfleetServer, clean_env

    base = Path(tempfile.mkdtemp(prefix="cf-bench-spiffe-server-"))
    base.chmod(0o755)
    server = CertfleetServer(base / "data")
    server.start()
    agent = None
    try:
        host = "bench-agent.example.test"
        server.cli("spiffe", "init", "--trust-domain", "example.org")
        started = time.perf_counter()
        _create_entries(server, host, entries, os.path.realpath(sys.executable))
        print(f"setup:   {entries:,} entries over the REST API in {time.perf_counter() - started:.0f} s")
        state = base / "agent-state"
        server.enroll(server.join_token(host), state)
        socket_path = base / "run" / "agent.sock"
        config = base / "agent.yaml"
        config.write_text(json.dumps({"state_dir": str(state), "spiffe": {
            "trust_domain": "example.org", "socket": str(socket_path)}}))  # fmt: skip
        log = base / "agent.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            agent = subprocess.Popen(
                [CERTFLEET, "agent", "run", "--config", str(config)], stdout=out, stderr=out, env=clean_env()
            )
        cached = 0
        while cached < entries:
            counts = re.findall(r"SVIDs issued or rotated, (\d+) cached", log.read_text())
            cached = int(counts[-1]) if counts else 0
            if agent.poll() is not None or time.perf_counter() - started > 1800:
                raise SystemExit(f"the agent stopped or stalled at {cached}: {log.read_text()[-2000:]}")
            time.sleep(0.2)  # polling a log for the bench's own measure, not synchronising a test
        issued = time.perf_counter() - started
        rss = _rss_kib(agent.pid)
        print(
            f"issue:   {entries:,} SVIDs from `certfleet agent run` start (keys on the agent, "
            f"certificates from the server, 500 per call) in {issued:.1f} s ({entries / issued:,.0f}/s); "
            f"agent RSS {rss['VmRSS'] / 1024:.0f} MiB (peak {rss['VmHWM'] / 1024:.0f} MiB)"
        )
        channels, calls = _open_streams(str(socket_path), streams)
        quiet = _latencies(str(socket_path), 1, seconds)
        for call in calls:
            call.cancel()  # type: ignore[attr-defined]
        for channel in channels:
            channel.close()
        print(
            f"latency: FetchX509SVID to first response with {streams} streams open, one caller: "
            f"{len(quiet):,} calls: p50 {_pct(quiet, 0.50):.1f} ms, p90 {_pct(quiet, 0.90):.1f} ms, "
            f"p99 {_pct(quiet, 0.99):.1f} ms, max {max(quiet) * 1000:.1f} ms; "
            f"agent RSS {_rss_kib(agent.pid)['VmRSS'] / 1024:.0f} MiB"
        )
    finally:
        if agent is not None and agent.poll() is None:
            agent.terminate()
            agent.wait(60)
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--server", action="store_true", help="a real certfleet serve and certfleet agent run instead"
    )
    args = parser.parse_args()
    if args.server:
        with_server(args.entries, args.streams, args.seconds)
        return
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

"""Hostile servers and dead networks: a failure is a result with a reason, never a crash,
and the run always completes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.discovery import servers
from tests.discovery.pki import Pki, key_pem, pem
from tests.ports import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki("Hostile")


@pytest.fixture(scope="module")
def hostile(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("hostile")
    good = pki.leaf(["127.0.0.1"])
    (base / "good.pem").write_bytes(pem(good.cert, pki.intermediate.cert))
    (base / "good.key").write_bytes(key_pem(good.key))
    # 400 certificates (~200 KB): past the 100 KB OpenSSL accepts in one Certificate message.
    (base / "huge.pem").write_bytes(pem(good.cert, *[pki.intermediate.cert] * 400))
    started = {
        "good": servers.tls(base / "good.pem", base / "good.key"),
        "huge-chain": servers.tls(base / "huge.pem", base / "good.key"),
        "silent": servers.ThreadedServer(servers.silent),
        "trickle": servers.ThreadedServer(servers.trickle),
        "plain-http": servers.ThreadedServer(servers.plain_http),
        "garbage": servers.ThreadedServer(servers.garbage),
    }
    addresses = {name: server.address for name, server in started.items()}
    addresses["refused"] = f"127.0.0.1:{free_port()}"
    addresses["no-dns"] = "no-such-host.invalid:443"
    try:
        yield addresses
    finally:
        for server in started.values():
            server.stop()


def test_nothing_hostile_stops_a_scan(cli: Cli, hostile: dict[str, str]) -> None:
    assert cli("init").exit_code == 0
    result = cli(
        "scan", "net", *hostile.values(), "--timeout", "1", "--format", "json", "--fail-on", "critical"
    )
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    by_target = {o["target"]: o for o in report["outcomes"]}
    got = {name: by_target[address]["status"] for name, address in hostile.items()}
    assert got == {
        "good": "ok",
        "huge-chain": "tls-error",
        "silent": "timeout",
        "trickle": "timeout",
        "plain-http": "tls-error",
        "garbage": "tls-error",
        "refused": "refused",
        "no-dns": "dns-error",
    }
    reasons = {name: by_target[address]["reason"] for name, address in hostile.items()}
    assert reasons["silent"] == reasons["trickle"] == "timed out after 1 s"
    assert "excessive message size" in reasons["huge-chain"]
    assert reasons["refused"] == "connection refused"
    assert "no-such-host.invalid" in reasons["no-dns"]
    assert all(reasons[name] for name in hostile if name != "good")
    scan = report["scan"]
    assert (scan["status"], scan["targets_total"], scan["succeeded"], scan["failed"]) == (
        "completed",
        8,
        1,
        7,
    )
    # The run and its errors are recorded.
    assert scan["finished_at"] is not None


_NETNS = """
set -e
ip link set lo up
ip link add v0 type veth peer name v1
ip link set v0 up
ip link set v1 up
ip addr add 10.99.1.1/24 dev v0
# A gateway that exists only as a permanent neighbour entry: packets for 10.99.0.0/24 leave
# through v0, and nobody answers. Connections hang as to a real dead host.
ip neigh replace 10.99.1.2 lladdr 02:00:00:00:00:01 dev v0 nud permanent
ip route add 10.99.0.0/24 via 10.99.1.2
ip addr add 10.99.0.77/32 dev lo
exec "$@"
"""

_PROBE = """
import json, sys, time
from pathlib import Path
from certfleet.discovery import NetScanOptions, NetworkScanner, expand_endpoints, read_targets
from tests.discovery import servers

alive = servers.tls(Path(sys.argv[1]), Path(sys.argv[2]), host="10.99.0.77")

class Peak:
    def __init__(self): self.now = self.peak = 0
    def on_start(self, total): pass
    def on_target_start(self, target):
        self.now += 1; self.peak = max(self.peak, self.now)
    def on_outcome(self, outcome): self.now -= 1

peak = Peak()
endpoints = expand_endpoints(read_targets(["10.99.0.0/24"]), (alive.port,))
start = time.monotonic()
outcomes = NetworkScanner(NetScanOptions(timeout_seconds=2.0)).run(endpoints, peak)
elapsed = time.monotonic() - start
statuses = {}
for o in outcomes:
    statuses[o.status.value] = statuses.get(o.status.value, 0) + 1
alive.stop()
print(json.dumps({"statuses": statuses, "peak": peak.peak, "elapsed": elapsed,
                  "ok": [o.location for o in outcomes if o.ok]}))
"""


def test_a_dead_slash_24_costs_one_timeout(pki: Pki, tmp_path: Path) -> None:
    """In a private network namespace, 10.99.0.0/24 is routed to a gateway that drops
    everything (loopback's 127/8 would answer every address at once, refusing). One address
    is alive. Every probe to the 253 dead ones runs at the same time, so the whole /24 waits
    one 2 s deadline, not 253 of them."""
    leaf = pki.leaf(["10.99.0.77"])
    (tmp_path / "alive.pem").write_bytes(pem(leaf.cert, pki.intermediate.cert))
    (tmp_path / "alive.key").write_bytes(key_pem(leaf.key))
    (tmp_path / "probe.py").write_text(textwrap.dedent(_PROBE))
    completed = subprocess.run(
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            _NETNS,
            "netns",
            sys.executable,
            str(tmp_path / "probe.py"),
            str(tmp_path / "alive.pem"),
            str(tmp_path / "alive.key"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": f"{REPO}:{REPO / 'src'}"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    print(f"/24 scan with a 2 s timeout took {result['elapsed']:.2f} s")
    assert result["statuses"] == {"timeout": 253, "ok": 1}
    assert result["ok"][0].startswith("10.99.0.77:")
    # All 254 connections were in flight together: the cost is one deadline, not a sum.
    assert result["peak"] == 254

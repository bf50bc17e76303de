"""An agent's Workload API endpoint in-process, over a hand-written SVID source, and real
workload processes (py-spiffe) run under other uids with ``setpriv``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from certfleet.agent.workload import WorkloadEndpoint
from tests.agent.workload.fakes import FakeSvidSource
from tests.conftest import FakeClock

ROOT = Path(__file__).resolve().parents[3]
OTHER_UID = 1000
NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="attesting other uids needs root")


def as_uid(uid: int | None) -> list[str]:
    if uid is None:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def workload_env(socket: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SPIFFE_ENDPOINT_SOCKET": f"unix://{socket}", **extra}


def workload(socket: Path, *args: str, uid: int | None = None) -> dict[str, object]:
    """Run the py-spiffe workload (tests/agent/workload/workload.py) once and return its last
    JSON line."""
    done = subprocess.run(
        [*as_uid(uid), sys.executable, "-m", "tests.agent.workload.workload", *args],
        cwd=ROOT,
        env=workload_env(socket),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    result: dict[str, object] = json.loads(lines[-1])
    return result


def started(socket: Path, *args: str, uid: int | None = None) -> subprocess.Popen[str]:
    """The py-spiffe workload, running: read its JSON lines with :func:`line`."""
    return subprocess.Popen(
        [*as_uid(uid), sys.executable, "-m", "tests.agent.workload.workload", *args],
        cwd=ROOT,
        env=workload_env(socket),
        stdout=subprocess.PIPE,
        text=True,
    )


def line(process: subprocess.Popen[str]) -> dict[str, object]:
    """The workload's next JSON line."""
    assert process.stdout is not None
    text = process.stdout.readline()
    assert text, "the workload ended without a result"
    parsed: dict[str, object] = json.loads(text)
    return parsed


@pytest.fixture
def source(clock: FakeClock) -> FakeSvidSource:
    return FakeSvidSource(clock)


@pytest.fixture
def socket_path() -> Iterator[Path]:
    """A socket other uids can reach: pytest's tmp_path is under a 0700 directory."""
    base = Path(tempfile.mkdtemp(prefix="certfleet-wl-test-"))
    base.chmod(0o755)
    yield base / "run" / "agent.sock"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def endpoint(socket_path: Path, source: FakeSvidSource, clock: FakeClock) -> Iterator[WorkloadEndpoint]:
    served = WorkloadEndpoint(socket_path, source, clock, trust_domain="example.org", background=False)
    served.start()
    yield served
    served.stop()


@pytest.fixture
def channel(endpoint: WorkloadEndpoint) -> Iterator[grpc.Channel]:
    """A channel of this (root) test process; calls add the header themselves."""
    with grpc.insecure_channel(f"unix:{endpoint.socket_path}") as opened:
        yield opened


HEADER = (("workload.spiffe.io", "true"),)

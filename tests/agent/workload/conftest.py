"""An agent's Workload API endpoint in-process, over a hand-written SVID source, and real
workload processes (py-spiffe) run under other uids with ``setpriv``."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from certfleet.agent.workload import WorkloadEndpoint
from tests.agent.workload.fakes import FakeSvidSource
from tests.conftest import FakeClock


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

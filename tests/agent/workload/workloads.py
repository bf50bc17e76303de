"""Real workload processes for the Workload API tests: the py-spiffe workload program
(workload.py), run as its own process, under another uid with ``setpriv`` when asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEADER = (("workload.spiffe.io", "true"),)
# Reading another user's /proc/PID/exe, as the agent does, and setpriv both need root.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="attesting other uids needs root")
OTHER_UID = 1000
NOBODY = 65534


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

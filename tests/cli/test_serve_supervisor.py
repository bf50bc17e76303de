"""``serve --workers``' first start runs in a forked child (``in_child``): what the child
returns, raises or exits with reaches the CLI as if it had happened in the CLI itself.

Each case runs in a fresh interpreter: forking the test process itself is refused when it
has threads (pytest-xdist's), as ``serve`` refuses."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import os, signal, sys
import typer
from certfleet.cli._supervisor import ChildExited, in_child

case = sys.argv[1]

def work():
    if case == "result":
        return {"pid": os.getpid(), "secret": b"bytes"}
    if case == "raise":
        raise LookupError("no such thing")
    if case == "typer-exit":
        raise typer.Exit(4)
    if case == "system-exit":
        raise SystemExit(3)
    os.kill(os.getpid(), signal.SIGKILL)

try:
    value = in_child(work)
except ChildExited as exc:
    print("exited", exc.code, exc.reason)
except LookupError as exc:
    print("raised", exc, "in serve's first-start child" in "".join(exc.__notes__))
else:
    print("result", value["pid"] != os.getpid(), value["secret"])
"""


def _run(case: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, case], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("case", "seen"),
    [
        ("result", "result True b'bytes'"),  # computed in another process, returned whole
        ("raise", "raised no such thing True"),  # the same type, with the child's traceback
        ("typer-exit", "exited 4 None"),  # the CLI's own exit: the child already said why
        ("system-exit", "exited 3 None"),
        ("killed", "exited 137 the first-start process died (-9)"),  # silent: the parent says
    ],
)
def test_the_first_start_child_reports_back(case: str, seen: str) -> None:
    assert _run(case) == seen

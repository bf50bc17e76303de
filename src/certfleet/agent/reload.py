"""The reload command: an argument list run without a shell, with a deadline."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from certfleet.agent.errors import ReloadFailed

__all__ = ["run_reload"]

_TAIL = 300


def run_reload(argv: Sequence[str], timeout_seconds: float) -> None:
    """Run ``argv`` (never through a shell: no quoting or injection to get wrong). Raises
    ReloadFailed on a non-zero exit, a missing program or the deadline."""
    try:
        result = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_seconds,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ReloadFailed(f"reload command {argv[0]!r} not found") from exc
    except PermissionError as exc:
        raise ReloadFailed(f"reload command {argv[0]!r} is not executable") from exc
    except subprocess.TimeoutExpired as exc:
        raise ReloadFailed(f"reload command {argv[0]!r} did not finish within {timeout_seconds:g} s") from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise ReloadFailed(
            f"reload command {argv[0]!r} exited with {result.returncode}: {output[-_TAIL:] or 'no output'}"
        )

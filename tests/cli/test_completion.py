"""Shell completion: ``certfleet --install-completion`` / ``--show-completion`` exist, and the
script they install completes command names, lazily loaded subcommands included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CERTFLEET_", "_CERTFLEET"))}
    return subprocess.run(
        [CERTFLEET, *args], capture_output=True, text=True, env={**environ, **env}, check=False, timeout=60
    )


def test_the_completion_script_is_offered_for_bash() -> None:
    # With shellingham installed, typer's --show-completion is a flag and the shell is the
    # nearest shell among the process's ancestors: under make's /bin/sh (or nohup sh) that is
    # "sh", which typer does not support, whatever follows the flag. typer's switch for tests
    # makes it take the shell named instead, so the test does not depend on who started it.
    shown = _run("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert shown.returncode == 0, shown.stderr
    assert "_certfleet_completion()" in shown.stdout
    assert "_CERTFLEET_COMPLETE=complete_bash" in shown.stdout
    assert "--install-completion" in _run("--help").stdout


def test_the_script_completes_commands_and_lazy_subcommands() -> None:
    top = _run(_CERTFLEET_COMPLETE="complete_bash", COMP_WORDS="certfleet inv", COMP_CWORD="1")
    assert top.returncode == 0, top.stderr
    assert top.stdout.split() == ["inventory"]
    sub = _run(_CERTFLEET_COMPLETE="complete_bash", COMP_WORDS="certfleet rotate st", COMP_CWORD="2")
    assert sub.stdout.split() == ["status"]

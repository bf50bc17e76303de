"""How the command line answers a person who typed something wrong (the usual usage error,
exit 2), the global --data-dir/--db before the subcommand, and the rare internal error (one
line pointing to a log file that holds the traceback, exit 70)."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest

from certfleet import __version__
from certfleet.cli.main import main as cli_main
from certfleet.services.authorities import AuthorityService
from tests.conftest import Cli


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


USAGE_ERRORS = {
    "unknown-option-top-level": (
        ["--frob"],
        "Usage: certfleet [OPTIONS] COMMAND [ARGS]...",
        "Try 'certfleet --help' for help.",
        "Error: No such option: --frob",
    ),
    "unknown-option-in-a-subcommand": (
        ["ca", "list", "--frob"],
        "Usage: certfleet ca list [OPTIONS]",
        "Try 'certfleet ca list --help' for help.",
        "Error: No such option: --frob",
    ),
    "unknown-option-two-levels-down": (
        ["acme", "eab", "list", "--frob"],
        "Usage: certfleet acme eab list [OPTIONS]",
        "Try 'certfleet acme eab list --help' for help.",
        "Error: No such option: --frob",
    ),
    "unknown-command": (
        ["frob"],
        "Usage: certfleet [OPTIONS] COMMAND [ARGS]...",
        "Try 'certfleet --help' for help.",
        "Error: No such command 'frob'.",
    ),
    "missing-argument": (
        ["revoke"],
        "Usage: certfleet revoke [OPTIONS]",
        "Try 'certfleet revoke --help' for help.",
        "Error: Missing argument 'serial'.",
    ),
    "option-without-its-value": (
        ["issue", "--csr"],
        "Usage: certfleet issue [OPTIONS]",
        "Try 'certfleet issue --help' for help.",
        "Error: Option '--csr' requires an argument.",
    ),
    "global-option-without-its-value": (
        ["ca", "list", "--data-dir"],
        "Usage: certfleet ca list [OPTIONS]",
        "Try 'certfleet ca list --help' for help.",
        "Error: Option '--data-dir' requires an argument.",
    ),
    "bad-choice": (
        ["inventory", "list", "--format", "xml"],
        "Usage: certfleet inventory list [OPTIONS]",
        "Try 'certfleet inventory list --help' for help.",
        "Error: Invalid value for '--format'",
    ),
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_usage_errors_print_the_usage_and_exit_2(capsys: pytest.CaptureFixture[str], case: str) -> None:
    args, usage, hint, error = USAGE_ERRORS[case]

    code, out, err = run(capsys, *args)

    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(usage), err
    assert lines[1] == hint
    assert lines[-1].startswith(error), err
    assert "internal error" not in err and "Traceback" not in err


def test_help_and_version_open_no_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # A database nobody could open: help and version must not try.
    unreachable = [
        "--data-dir",
        str(tmp_path / "none"),
        "--db",
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
    ]
    code, out, err = run(capsys, *unreachable, "version")
    assert (code, out, err) == (0, f"{__version__}\n", "")
    code, out, _ = run(capsys, *unreachable, "--help")
    assert code == 0 and "Usage: certfleet" in out and "--data-dir" in out
    assert not (tmp_path / "none").exists()


def test_global_data_dir_and_db_equal_the_commands_own(
    initialized: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CERTFLEET_HOME", raising=False)
    monkeypatch.delenv("CERTFLEET_DB", raising=False)
    where = ["--data-dir", str(initialized.data_dir), "--db", initialized.db_url]
    own = run(capsys, "ca", "list", "--format", "json", *where)
    assert own[0] == 0 and '"role": "root"' in own[1], own

    assert run(capsys, *where, "ca", "list", "--format", "json") == own
    # The global options hold for that run only.
    assert "CERTFLEET_HOME" not in os.environ and "CERTFLEET_DB" not in os.environ

    # A command's own option wins over the global one, either way round.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(capsys, "--data-dir", str(empty), "ca", "list", "--format", "json", *where) == own
    code, out, err = run(capsys, *where, "ca", "list", "--data-dir", str(empty))
    assert (code, out) == (2, "") and str(empty) in err and "certfleet init" in err


def test_an_internal_error_is_one_line_pointing_to_the_logged_traceback(
    initialized: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: AuthorityService) -> None:
        raise RuntimeError("the hierarchy\nis broken")

    monkeypatch.setattr(AuthorityService, "hierarchy", broken)

    result = initialized("ca", "list")

    log = initialized.data_dir / "logs" / "cli.log"
    assert result.exit_code == 70
    assert result.stdout == ""
    assert result.stderr == f"internal error: RuntimeError: the hierarchy is broken (details in {log})\n"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    logged = log.read_text()
    assert "Traceback (most recent call last)" in logged
    assert "in broken" in logged and "RuntimeError: the hierarchy\nis broken" in logged
    # A second one is appended to the same file.
    assert initialized("ca", "list").exit_code == 70
    assert log.read_text().count("Traceback (most recent call last)") == 2


def test_without_a_data_directory_the_log_goes_to_the_cache_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("settings exploded")

    monkeypatch.setattr("certfleet.cli._common.load_settings", broken)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    code, out, err = run(capsys, "ca", "list", "--data-dir", str(tmp_path / "missing"))

    log = tmp_path / "cache" / "certfleet" / "cli.log"
    assert (code, out) == (70, "")
    assert re.fullmatch(
        rf"internal error: RuntimeError: settings exploded \(details in {re.escape(str(log))}\)\n", err
    )
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert "RuntimeError: settings exploded" in log.read_text()
    assert not (tmp_path / "missing").exists()


def test_a_database_locked_past_the_wait_is_one_line_for_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Not a bug (no traceback logged, no "internal error"): a temporary failure to retry.
    database = tmp_path / "data" / "certfleet.db"
    initialized = Cli(capsys, tmp_path / "data", f"sqlite:///{database}")
    assert initialized("init", "--ca-name", "Example").exit_code == 0
    with (initialized.data_dir / "config.toml").open("a") as config:
        config.write("[server]\nsqlite_lock_wait_seconds = 0.2\n")
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # an operator's sqlite3 shell, a backup tool
    try:
        # One that opens the platform, and one (scan) that opens only the discovery store.
        token = initialized("token", "create", "--team", "ops", "--scope", "read")
        scan = initialized("scan", "net", "127.0.0.1:1", "--timeout", "1", "--quiet")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (token.exit_code, token.stderr) == (2, "error: cannot open database: database is locked\n")
    assert (scan.exit_code, scan.stdout) == (2, ""), scan.stderr
    assert scan.stderr == "error: the database is unavailable: database is locked\n"
    assert not (initialized.data_dir / "logs" / "cli.log").exists()  # neither is logged as a bug
    assert initialized("token", "create", "--team", "ops", "--scope", "read").exit_code == 0  # lock gone

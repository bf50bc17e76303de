"""`certfleet`, `certfleet --help` and `certfleet version` are answered without importing
typer (issue 11: start-up at most 8x a bare interpreter; typer alone costs about 5x), and the
answer is byte for byte what typer itself prints, on the same stream, with the same exit
code, at any terminal width. Every other argument list still goes to typer.

The comparison renders typer's answer in-process through the typer path of the entry point
(``_app.run_typer``), so a command, option or help line changed on one side and not the
other fails here. No test here measures time (bench/cli.py does)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer._click.formatting import wrap_text
from typer._click.utils import make_default_short_help

from certfleet import __version__
from certfleet.cli import _fast
from certfleet.cli._app import _click_command, run_typer
from certfleet.cli._fast import answer
from certfleet.cli.main import COMMANDS, HELP, main

FAST = {"version": ["version"], "help": ["--help"], "no-arguments": []}
# 80 columns and wider all give click's 78; below 52 its minimum of 50.
WIDTHS = [None, "1", "40", "52", "53", "61", "67", "72", "79", "80", "200"]


def _kept_help() -> dict[str, str]:
    return {name: entry.help for name, entry in COMMANDS.items()}


def _run(
    capsys: pytest.CaptureFixture[str], entry: Callable[[list[str]], int | None], args: list[str]
) -> tuple[int | None, str, str]:
    capsys.readouterr()
    code = entry(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("columns", WIDTHS, ids=lambda c: f"columns-{c}")
@pytest.mark.parametrize("args", FAST.values(), ids=FAST.keys())
def test_the_fast_answer_is_what_typer_prints(
    args: list[str], columns: str | None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # click's formatter reads the width from shutil.get_terminal_size(): COLUMNS first.
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)

    fast = _run(capsys, lambda a: answer(a, HELP, _kept_help()), args)
    typer_said = _run(capsys, run_typer, args)

    assert fast[0] is not None, "not answered by the fast path"
    assert fast == typer_said


def test_the_fast_answers_are_the_documented_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, main, ["version"]) == (0, f"{__version__}\n", "")

    code, out, err = _run(capsys, main, ["--help"])
    assert (code, err) == (0, "")
    assert out.startswith("Usage: certfleet [OPTIONS] COMMAND [ARGS]...\n\n  " + HELP + "\n")
    listed = [row.split()[0] for row in out.partition("Commands:\n")[2].splitlines() if row[2] != " "]
    assert listed == list(COMMANDS)

    code, out, err = _run(capsys, main, [])  # no command: the help, as a usage error
    assert (code, out) == (2, "")
    assert err.startswith("Usage: certfleet")


def test_the_root_options_are_typers() -> None:
    # The rows the fast help lists, beside typer's own: a precise message when one drifts.
    import typer

    command = _click_command()
    context = typer.Context(command, info_name="certfleet")
    rows = [param.get_help_record(context) for param in command.get_params(context)]  # type: ignore[attr-defined]

    assert tuple(row for row in rows if row is not None) == _fast.OPTIONS


@pytest.mark.parametrize(
    "args",
    [
        ["--data-dir", "/nonexistent", "version"],
        ["--db", "sqlite://", "--help"],
        ["version", "--help"],
        ["--version"],
        ["-h"],
        ["version", "extra"],
        ["inventory"],
        ["--help", "version"],
    ],
)
def test_every_other_argument_list_goes_to_typer(args: list[str]) -> None:
    assert answer(args, HELP, _kept_help()) is None


def test_shell_completion_goes_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    # The script --install-completion writes calls `certfleet` with no arguments and the
    # completion request in the environment: typer must answer it, not print the help.
    monkeypatch.setenv("_CERTFLEET_COMPLETE", "complete_bash")

    assert answer([], HELP, _kept_help()) is None
    assert answer(["version"], HELP, _kept_help()) is None


def test_shell_completion_still_completes_a_command() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from certfleet.cli.main import run; sys.exit(run())"],
        env={
            **os.environ,
            "_CERTFLEET_COMPLETE": "complete_bash",
            "COMP_WORDS": "certfleet ver",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert (done.returncode, done.stdout.split()) == (0, ["version"]), done.stderr


_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| ( *)(\S+)$")


@pytest.mark.parametrize(("args", "code"), [(["version"], 0), (["--help"], 0), ([], 2)], ids=FAST.keys())
def test_the_console_script_imports_no_typer_and_no_click(args: list[str], code: int, tmp_path: Path) -> None:
    # What the console script runs (.venv/bin/certfleet), in a fresh interpreter, its imports
    # listed by -X importtime: neither typer (nor the click it vendors) nor click itself, and
    # of certfleet only the entry point and the fast path.
    script = "import sys; from certfleet.cli.main import run; sys.exit(run())"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", script, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    imported = {m.group(2) for m in map(_IMPORTED.match, done.stderr.splitlines()) if m}
    said = done.stdout + "".join(
        line for line in done.stderr.splitlines(True) if not line.startswith("import time:")
    )

    assert done.returncode == code, said
    assert (__version__ in said) if args == ["version"] else said.startswith("Usage: certfleet"), said
    assert imported, done.stderr  # -X importtime did report
    top_level = {name.partition(".")[0] for name in imported}
    assert not top_level & {"typer", "click", "rich", "pydantic", "sqlalchemy", "cryptography"}, sorted(
        top_level
    )
    assert {name for name in imported if name.startswith("certfleet")} <= {
        "certfleet",
        "certfleet.cli",
        "certfleet.cli.main",
        "certfleet.cli._fast",
    }


# The layout helpers against click's own, on shapes the command list does not show today
# (a long word, several sentences, paragraphs, a \b block, exact fits), so a command added
# tomorrow with such help is still listed as typer lists it.
SHORT_HELPS = [
    "Print the version.",
    "A help with no final period",
    "First sentence. Second sentence that is much longer than the first one.",
    "Averyveryveryveryveryverylongwordthatdoesnotfitanywhere and more words here.",
    "Two paragraphs: the first one.\n\nThe second one is never shown in the list.",
    "\b\nkept as written\nover lines",
    "exactly ten",
    "",
]


@pytest.mark.parametrize("text", SHORT_HELPS)
def test_the_short_help_is_clicks(text: str) -> None:
    for limit in range(1, 80):
        assert _fast._short_help(text, limit) == make_default_short_help(text, limit).strip(), limit


WRAPPED = [
    "Database URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in the data dir).",
    "A machine-identity platform with hyphen-ated words and a verylongwordwithoutanybreakpointsatall.",
    "First paragraph here.\n\n  An indented second paragraph, also to be wrapped at the width.",
    "\b\nkept as\n  written\n\nthen wrapped again after the block ends here.",
    "tabs\tare\texpanded first",
]


@pytest.mark.parametrize("text", WRAPPED)
def test_wrapping_is_clicks(text: str) -> None:
    for width in range(10, 80, 3):
        assert _fast._wrap_paragraphs(text, width) == wrap_text(text, width, preserve_paragraphs=True)
        assert _fast._wrap_paragraphs(text, width, "  ") == wrap_text(
            text, width, initial_indent="  ", subsequent_indent="  ", preserve_paragraphs=True
        )
        assert _fast._wrap(text, width, "Usage: x ", " " * 9) == wrap_text(
            text, width, initial_indent="Usage: x ", subsequent_indent=" " * 9
        )

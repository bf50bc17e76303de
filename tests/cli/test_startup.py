"""What the command line imports and touches before it does anything: `certfleet --help` and
`certfleet version`, even with global options (which typer parses), load nothing of the
platform and open no database; a command loads its own module and what that needs, not every
other command's. (Without global options they do not even load typer: test_fast_path.py.)

Each case runs in a fresh interpreter (an in-process run would find the modules other tests
imported): a small wrapper runs the real entry point, then prints which of the watched
packages are in ``sys.modules``. No test here measures time (bench/cli.py does)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from certfleet.cli._app import _click_command
from certfleet.cli.main import COMMANDS
from tests.conftest import Cli

# The web stack, the database stack, templates and the ACME libraries; pydantic (typer checks
# option values with it), Rich (help and tables) and cryptography: each costs more to import
# than a bare interpreter takes to start, and none is needed to print help or the version.
PLATFORM = {"fastapi", "starlette", "uvicorn", "alembic", "sqlalchemy", "psycopg", "jinja2", "josepy", "acme"}
START_UP = PLATFORM | {"pydantic", "rich", "cryptography", "httpx", "yaml"}
WATCHED = START_UP

_WRAPPER = """
import json, sys
from certfleet.cli.main import main
code = main(sys.argv[1:])
watched = set(json.loads(WATCHED))
loaded = sorted(n for n in sys.modules if n.partition(".")[0] in watched or n.startswith("certfleet."))
sys.stdout.flush()
print("\\n" + json.dumps({"code": code, "loaded": loaded}))
"""


def run_fresh(*args: str) -> tuple[int, str, set[str]]:
    """Run ``certfleet ARGS`` in a new interpreter: (exit code, output, the watched packages
    and certfleet's modules it loaded)."""
    wrapper = _WRAPPER.replace("WATCHED", repr(json.dumps(sorted(WATCHED))))
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    output, _, last = done.stdout.rstrip("\n").rpartition("\n")
    report = json.loads(last)
    return report["code"], output + done.stderr, set(report["loaded"])


def packages(loaded: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in loaded} - {"certfleet"}


@pytest.fixture
def nowhere(tmp_path: Path) -> list[str]:
    """A data directory that does not exist and a database nobody could open."""
    return ["--data-dir", str(tmp_path / "none"), "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"]


@pytest.mark.parametrize(
    "args",
    [["version"], ["--help"], [], ["version", "--help"]],
    ids=["version", "help", "no-arguments", "version-help"],
)
def test_help_and_version_load_nothing_of_the_platform(
    args: list[str], nowhere: list[str], tmp_path: Path
) -> None:
    code, output, loaded = run_fresh(*nowhere, *args)

    assert code == (2 if not args else 0), output  # no command: the help, as a usage error
    assert ("0.1.0" in output) if args == ["version"] else ("Usage: certfleet" in output), output
    assert packages(loaded) == set(), f"imported for {args}: {sorted(packages(loaded))}"
    # The CLI's own modules, the version command's, and the shared error types: no command's.
    assert loaded <= {
        "certfleet",
        "certfleet.errors",
        "certfleet.cli",
        "certfleet.cli.main",
        "certfleet.cli._app",
        "certfleet.cli._fast",
        "certfleet.cli._common",
        "certfleet.cli._lazy",
        "certfleet.cli._table",
        "certfleet.cli.version",
    }, sorted(loaded)
    assert not (tmp_path / "none").exists()


def test_help_lists_every_command_without_loading_one(nowhere: list[str]) -> None:
    code, output, _ = run_fresh(*nowhere, "--help")

    assert code == 0
    rows = output.partition("Commands:")[2].splitlines()
    listed = [row.split()[0] for row in rows if row.startswith("  ") and not row.startswith("   ")]
    assert listed == list(COMMANDS)


def test_a_command_help_loads_that_command_only(nowhere: list[str]) -> None:
    code, output, loaded = run_fresh(*nowhere, "db", "--help")

    assert code == 0 and "upgrade" in output, output
    # `db upgrade` needs Alembic and SQLAlchemy (the store), but no other command, and
    # nothing of the web stack.
    others = {f"certfleet.cli.{entry.module.rpartition('.')[2]}" for entry in COMMANDS.values()}
    assert loaded & others == {"certfleet.cli.db"}, sorted(loaded & others)
    assert not packages(loaded) & {"fastapi", "starlette", "uvicorn", "jinja2"}, sorted(packages(loaded))
    assert "certfleet.api" not in loaded and "certfleet.web" not in loaded


def test_the_kept_one_line_help_is_what_each_command_says() -> None:
    # --help lists commands from the help kept in COMMANDS, without importing them: it must
    # stay what the command itself says (loading each one here, in-process).
    group = _click_command()
    for name, entry in COMMANDS.items():
        command = group.commands[name]  # type: ignore[attr-defined]
        said = command.get_short_help_str(limit=1000)
        assert said == entry.help, name


def test_listing_the_inventory_opens_no_platform(initialized: Cli) -> None:
    issued = initialized("issue", "--san", "www.example.test", "--out", str(initialized.data_dir / "out"))
    assert issued.exit_code == 0, issued.stderr

    code, output, loaded = run_fresh(
        "inventory",
        "list",
        "--format",
        "csv",
        "--data-dir",
        str(initialized.data_dir),
        "--db",
        initialized.db_url,
    )

    assert code == 0, output
    assert "www.example.test" in output
    # The database and the certificate repository: no web stack, no ACME, no Alembic (a
    # read migrates nothing), no other command.
    assert not packages(loaded) & {
        "fastapi",
        "starlette",
        "uvicorn",
        "jinja2",
        "josepy",
        "acme",
        "alembic",
    }, sorted(packages(loaded))
    assert "certfleet.app" not in loaded and "certfleet.services" not in loaded


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_listing_the_inventory_imports_no_orm_and_no_cryptography(initialized: Cli, fmt: str) -> None:
    # issue 11: `inventory list` over 10,000 certificates in under 0.6 s, a fresh process
    # each time, so what it imports is most of what it costs. The table and CSV need the
    # listed columns of one SELECT: no ORM (sqlalchemy.orm and the store's models), no
    # cryptography (nothing is parsed), no pydantic (typer's option checks), and on a
    # SQLite file no SQLAlchemy at all (the standard library's sqlite3 reads it).
    issued = initialized("issue", "--san", "list.example.test", "--out", str(initialized.data_dir / "out"))
    assert issued.exit_code == 0, issued.stderr
    where = ["--data-dir", str(initialized.data_dir), "--db", initialized.db_url]

    code, output, loaded = run_fresh("inventory", "list", "--format", fmt, *where)

    assert code == 0, output
    assert "list.example.test" in output
    assert not {"cryptography", "pydantic"} & packages(loaded), sorted(packages(loaded))
    assert not {"sqlalchemy.orm", "certfleet.store.models", "certfleet.x509"} & loaded
    if initialized.db_url.startswith("sqlite"):
        assert "sqlalchemy" not in packages(loaded), sorted(n for n in loaded if n.startswith("sqlalchemy"))


def test_a_local_scan_imports_no_pydantic_and_no_web_stack(initialized: Cli) -> None:
    # A scan's start-up is part of what its user waits for (issue 11: the discovery CLI at
    # 10x sslyze, start-up included): its options are converted by the command, not by
    # typer's pydantic adapters, and only the discovery service is opened.
    where = ["--data-dir", str(initialized.data_dir), "--db", initialized.db_url]

    code, output, loaded = run_fresh(
        "scan",
        "net",
        "127.0.0.1:1",
        "--timeout",
        "2",
        "--concurrency",
        "4",
        "--quiet",
        "--format",
        "json",
        *where,
    )

    assert code == 0, output
    assert '"targets_total": 1' in output, output
    assert not packages(loaded) & {"pydantic", "fastapi", "starlette", "uvicorn", "jinja2", "alembic"}, (
        sorted(packages(loaded))
    )

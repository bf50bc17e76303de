"""`certfleet db upgrade` on a fresh database and on an up-to-date one, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from certfleet.store import Database
from tests.conftest import Cli
from tests.services.snapshot import private_database

CORE_TABLES = {
    "certificates",
    "certificate_names",
    "serials",
    "certificate_authorities",
    "api_tokens",
    "audit_log",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or an empty PostgreSQL schema of its own."""
    pg_url = request.getfixturevalue("pg_database_url") if request.param == "postgresql" else None
    with private_database(request.param, tmp_path / "data", pg_url) as url:
        yield url


def _state(url: str) -> tuple[tuple[str, ...], tuple[str, ...], set[str]]:
    database = Database(url)
    try:
        return (
            database.current_revisions(),
            database.head_revisions(),
            set(inspect(database.engine).get_table_names()),
        )
    finally:
        database.dispose()


def test_upgrade_a_fresh_database_then_again(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fresh_url: str
) -> None:
    cli = Cli(capsys, tmp_path / "data", fresh_url)
    current, heads, tables = _state(fresh_url)
    assert current == () and not CORE_TABLES & tables

    first = cli("db", "upgrade")

    assert first.exit_code == 0, first.stderr
    current, heads, tables = _state(fresh_url)
    assert current == heads
    assert tables >= CORE_TABLES
    lines = first.stdout.splitlines()
    assert lines == [f"applied {', '.join(current)}", f"revision {', '.join(current)}"]

    second = cli("db", "upgrade")
    assert second.exit_code == 0, second.stderr
    assert second.stdout.splitlines() == ["database is up to date", f"revision {', '.join(current)}"]
    assert _state(fresh_url) == (current, heads, tables)


def test_upgrade_after_init_is_a_no_op(cli: Cli) -> None:
    assert cli("init").exit_code == 0
    before = _state(cli.db_url)
    result = cli("db", "upgrade")
    assert result.exit_code == 0
    assert result.stdout.startswith("database is up to date\n")
    assert _state(cli.db_url) == before
    assert cli("audit", "verify").exit_code == 0


def test_unreachable_database_is_one_line(cli: Cli) -> None:
    result = cli.raw(
        "db",
        "upgrade",
        "--data-dir",
        str(cli.data_dir),
        "--db",
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot ") and result.stderr.count("\n") == 1

"""``certfleet db check``: connectivity, the schema's revision on every migration branch
against this version's heads, and this machine's clock against the database's
(``clock_timestamp()``), as a table or JSON; exit 1 only when something failed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from certfleet.store import Database
from certfleet.store._nodes import NodeHeartbeats
from tests.conftest import Cli
from tests.ports import free_port
from tests.services.snapshot import private_database

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))


def _heads(url: str) -> list[str]:
    database = Database(url)
    try:
        return list(database.head_revisions())
    finally:
        database.dispose()


def test_an_up_to_date_database_checks_ok(cli: Cli, db_url: str) -> None:
    cli("db", "upgrade")

    table = cli("db", "check")
    document = cli("db", "check", "--format", "json")

    assert table.exit_code == 0, table.stderr
    assert table.stdout.splitlines()[-1] == "status       ok"
    assert "schema       ok    up to date" in table.stdout
    assert document.exit_code == 0
    report = json.loads(document.stdout)
    assert report["status"] == "ok"
    assert report["database"]["status"] == "ok"
    assert "certfleet:certfleet@" not in report["database"]["url"]  # no password printed
    assert [b["head"] for b in report["schema"]["branches"]] == _heads(db_url)
    assert all(b["current"] == b["head"] for b in report["schema"]["branches"])
    assert report["schema"]["pending"] == [] and report["schema"]["newer"] == []
    assert report["clock"]["status"] == "ok"
    expected = "clock_timestamp()" if db_url.startswith("postgresql") else "this machine (SQLite)"
    assert report["clock"]["source"] == expected


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    pg_url = request.getfixturevalue("pg_database_url") if request.param == "postgresql" else None
    with private_database(request.param, tmp_path / "data", pg_url) as url:
        yield url


def test_a_database_behind_names_each_pending_branch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fresh_url: str
) -> None:
    database = Database(fresh_url)
    try:
        command.upgrade(database._alembic_config(), "0001")  # the trunk only: every branch behind
    finally:
        database.dispose()
    cli = Cli(capsys, tmp_path / "data", fresh_url)

    result = cli("db", "check", "--format", "json")

    assert result.exit_code == 0, result.stderr  # behind is a warning: a rolling upgrade is under way
    report = json.loads(result.stdout)
    assert report["status"] == report["schema"]["status"] == "warn"
    assert report["schema"]["current"] == ["0001"]
    assert report["schema"]["pending"] == _heads(fresh_url)
    assert {b["current"] for b in report["schema"]["branches"]} == {"0001"}
    assert "(pending)" in cli("db", "check").stdout


def test_a_database_migrated_by_a_newer_version_is_named(cli: Cli, db_url: str) -> None:
    cli("db", "upgrade")
    database = Database(db_url)
    try:
        with database.engine.begin() as conn:
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0099_from_the_future')"))
        result = cli("db", "check", "--format", "json")
    finally:
        with database.engine.begin() as conn:
            conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0099_from_the_future'"))
        database.dispose()

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"]["newer"] == ["0099_from_the_future"]
    assert report["status"] == "warn"


def test_an_unreachable_database_fails_with_its_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"postgresql+psycopg://certfleet:secret@127.0.0.1:{free_port()}/certfleet"
    cli = Cli(capsys, tmp_path / "data", url)

    table = cli("db", "check")
    document = cli("db", "check", "--format", "json")

    assert table.exit_code == document.exit_code == 1
    assert "database     fail" in table.stdout and "database unreachable" in table.stdout
    assert "Connection refused" in table.stdout
    assert "Traceback" not in table.stdout + table.stderr
    report = json.loads(document.stdout)
    assert report["status"] == report["database"]["status"] == "fail"
    assert "secret" not in document.stdout


def test_thresholds_in_the_wrong_order_are_refused(cli: Cli) -> None:
    result = cli("db", "check", "--warn-skew", "3", "--max-skew", "1")

    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --warn-skew must not be larger than --max-skew"


def _check_with_clock_off(
    offset: str, url: str, tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``db check`` in a process whose clock runs ``offset`` from the machine's (libfaketime,
    Debian ``faketime``): the database's clock is the machine's own."""
    faketime = shutil.which("faketime")
    assert faketime, "Debian package faketime (scripts/debian-packages.txt)"
    argv = [faketime, "-f", offset, CERTFLEET, "db", "check", "--format", "json", "--db", url]
    argv += ["--data-dir", str(tmp_path / "data"), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_a_node_clock_off_warns_then_fails(pg_database_url: str, tmp_path: Path) -> None:
    warned = _check_with_clock_off("+3s", pg_database_url, tmp_path)
    failed = _check_with_clock_off("-30s", pg_database_url, tmp_path)
    allowed = _check_with_clock_off("-30s", pg_database_url, tmp_path, "--max-skew", "60")

    assert warned.returncode == 0, warned.stderr
    clock = json.loads(warned.stdout)["clock"]
    assert clock["status"] == "warn"
    assert 2.5 < clock["skew_seconds"] < 3.5  # this node's clock is 3 s ahead of the database's
    assert failed.returncode == 1, failed.stderr
    report = json.loads(failed.stdout)
    assert report["status"] == report["clock"]["status"] == "fail"
    assert -30.5 < report["clock"]["skew_seconds"] < -29.5
    assert allowed.returncode == 0 and json.loads(allowed.stdout)["clock"]["status"] == "warn"


def _beat_with_clock_off(offset: str, url: str, node_id: str) -> None:
    """One heartbeat written by a process whose clock runs ``offset`` from the machine's."""
    faketime = shutil.which("faketime")
    assert faketime
    code = (
        "import sys; from certfleet.store import Database; from certfleet.store._nodes import "
        "NodeHeartbeats; d = Database(sys.argv[1]); NodeHeartbeats(d, node_id=sys.argv[2]).beat()"
    )
    subprocess.run(
        [faketime, "-f", offset, sys.executable, "-c", code, url, node_id], check=True, timeout=120
    )


def test_every_node_is_listed_with_its_clock_skew(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_database_url: str
) -> None:
    with private_database("postgresql", tmp_path, pg_database_url) as url:
        database = Database(url)
        try:
            database.upgrade()
            NodeHeartbeats(database, node_id="node-a:1").beat()
        finally:
            database.dispose()
        _beat_with_clock_off("+3s", url, "node-b:2")
        cli = Cli(capsys, tmp_path / "data", url)

        result = cli("db", "check", "--format", "json")
        table = cli("db", "check").stdout

    report = json.loads(result.stdout)
    nodes = {n["node"]: n for n in report["nodes"]}
    assert set(nodes) == {"node-a:1", "node-b:2"}
    assert nodes["node-a:1"]["status"] == "ok" and abs(nodes["node-a:1"]["clock_skew_seconds"]) < 1
    assert nodes["node-b:2"]["status"] == "warn"
    assert 2.5 < nodes["node-b:2"]["clock_skew_seconds"] < 3.5
    assert all(0 <= n["last_seen_seconds_ago"] < 30 for n in nodes.values())
    assert report["status"] == "warn" and result.exit_code == 0  # another node's clock: a warning
    assert "node         warn  node-b:2" in table

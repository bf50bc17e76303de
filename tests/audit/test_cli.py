"""`certfleet audit list|verify` on SQLite and PostgreSQL: every kind of event is logged,
and any row edited, deleted or reordered in the database (by raw SQL) is caught and named."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, select, text

from certfleet.cli.main import main as cli_main
from certfleet.store import Database
from certfleet.store.models import AuditRow, UtcDateTime
from tests.conftest import Cli
from tests.services.snapshot import private_database

EVENTS = [
    "ca.created",
    "ca.created",
    "token.created",
    "certificate.issued",
    "certificate.refused",
    "token.revoked",
]


@dataclass
class LoggedEnv:
    data_dir: Path
    db_url: str
    rows: list[dict[str, Any]]  # the pristine audit_log rows


def _run(data_dir: Path, url: str, *args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli_main([*args, "--data-dir", str(data_dir), "--db", url])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def logged_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoggedEnv]:
    """A data directory whose audit log holds one entry of each kind, in EVENTS order, built
    once per backend; ``logged`` restores the log's rows before each test tampers with them."""
    tmp = tmp_path_factory.mktemp("audit")
    data_dir = tmp / "data"
    pg_url = request.getfixturevalue("pg_database_url") if request.param == "postgresql" else None
    with private_database(request.param, data_dir, pg_url) as url:
        assert _run(data_dir, url, "init", "--ca-name", "Audit") == 0
        args = ("token", "create", "--team", "web", "--scope", "issue", "--allow-names", "*.example.com")
        assert _run(data_dir, url, *args) == 0
        assert _run(data_dir, url, "issue", "--san", "www.example.com", "--out", str(tmp / "out")) == 0
        assert _run(data_dir, url, "issue", "--san", "bad..example.com", "--out", str(tmp / "refused")) == 2
        database = Database(url)
        try:
            with database.engine.connect() as conn:
                token_id = conn.execute(text("SELECT id FROM api_tokens")).scalar_one()
            assert _run(data_dir, url, "token", "revoke", token_id) == 0
            with database.engine.connect() as conn:
                table = AuditRow.__table__
                rows = [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.seq))]
        finally:
            database.dispose()
        yield LoggedEnv(data_dir, url, rows)


@pytest.fixture
def logged(logged_env: LoggedEnv, capsys: pytest.CaptureFixture[str]) -> Cli:
    database = Database(logged_env.db_url)
    try:
        with database.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))
            conn.execute(AuditRow.__table__.insert(), logged_env.rows)
    finally:
        database.dispose()
    return Cli(capsys, logged_env.data_dir, logged_env.db_url)


def _sql(cli: Cli, statement: str, **params: object) -> None:
    database = Database(cli.db_url)
    try:
        with database.engine.begin() as conn:
            stmt = text(statement)
            if "at" in params:
                stmt = stmt.bindparams(bindparam("at", type_=UtcDateTime()))
            conn.execute(stmt, params)
    finally:
        database.dispose()


def _verify_fails_at(cli: Cli, seq: int) -> str:
    result = cli("audit", "verify")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.stderr
    assert line.startswith(f"audit log FAILED verification at entry {seq}:"), line
    return line


def test_every_event_kind_is_logged_and_listed_as_json(logged: Cli) -> None:
    result = logged("audit", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [e["action"] for e in entries] == EVENTS
    assert [e["seq"] for e in entries] == list(range(1, len(EVENTS) + 1))
    assert {e["actor"] for e in entries} == {"cli"}
    for entry in entries:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["at"])
        assert re.fullmatch(r"[0-9a-f]{64}", entry["hash"])
        assert isinstance(entry["details"], dict)
    for before, after in itertools.pairwise(entries):
        assert after["prev_hash"] == before["hash"]
    ca_roles = [e["details"]["role"] for e in entries[:2]]
    assert ca_roles == ["root", "intermediate"]
    assert entries[3]["details"]["sans"] == ["www.example.com"]
    assert "empty label" in entries[4]["details"]["reason"]
    assert entries[5]["subject"] == entries[2]["subject"]  # the token revoked is the one created


def test_audit_list_table(logged: Cli) -> None:
    result = logged("audit", "list")
    assert result.exit_code == 0
    for action in set(EVENTS):
        assert action in result.stdout


def test_intact_log_verifies(logged: Cli) -> None:
    result = logged("audit", "verify")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"audit log OK: {len(EVENTS)} entries, chain intact"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "mallory"),
        ("action", "certificate.imported"),
        ("subject", "0123abcd"),
        ("details_json", '{"profile": "tls-client"}'),
        ("details_json", "not json at all"),
        ("prev_hash", "0" * 64),
        ("hash", "f" * 64),
    ],
)
def test_an_edited_column_is_named(logged: Cli, column: str, value: str) -> None:
    _sql(logged, f"UPDATE audit_log SET {column} = :value WHERE seq = 3", value=value)
    _verify_fails_at(logged, 3)


def test_an_edited_timestamp_is_named(logged: Cli) -> None:
    entries = json.loads(logged("audit", "list", "--format", "json").stdout)
    moved = dt.datetime.fromisoformat(entries[3]["at"].replace("Z", "+00:00")) + dt.timedelta(microseconds=1)
    _sql(logged, "UPDATE audit_log SET at = :at WHERE seq = 4", at=moved)
    _verify_fails_at(logged, 4)


def test_an_edited_sequence_number_is_named(logged: Cli) -> None:
    _sql(logged, "UPDATE audit_log SET seq = 100 WHERE seq = 3")
    assert "entry 3 is missing" in _verify_fails_at(logged, 3)


def test_a_deleted_middle_entry_is_named(logged: Cli) -> None:
    _sql(logged, "DELETE FROM audit_log WHERE seq = 3")
    assert "entry 3 is missing" in _verify_fails_at(logged, 3)


def test_a_deleted_last_entry_is_named(logged: Cli) -> None:
    last = len(EVENTS)
    _sql(logged, "DELETE FROM audit_log WHERE seq = :seq", seq=last)
    line = _verify_fails_at(logged, last)
    assert f"ends at entry {last - 1} but its head records entry {last}" in line


def test_two_reordered_entries_are_named(logged: Cli) -> None:
    # Swap the sequence numbers of entries 2 and 4 (through a free value: seq is the key).
    _sql(logged, "UPDATE audit_log SET seq = -4 WHERE seq = 4")
    _sql(logged, "UPDATE audit_log SET seq = 4 WHERE seq = 2")
    _sql(logged, "UPDATE audit_log SET seq = 2 WHERE seq = -4")
    assert "does not link" in _verify_fails_at(logged, 2)


def test_undecodable_details_are_still_listed(logged: Cli) -> None:
    _sql(logged, "UPDATE audit_log SET details_json = 'not json' WHERE seq = 2")
    result = logged("audit", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[1]["details"] == {"undecodable": "not json"}

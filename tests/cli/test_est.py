"""`certfleet est credential create|list|revoke`: 'username:password' printed once, only a
hash stored, never listed; bad input is one line and exit 2."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from sqlalchemy import text

from certfleet.store import Database
from tests.conftest import Cli


def test_create_prints_basic_credentials_once_and_stores_only_a_hash(ca_cli: Cli) -> None:
    result = ca_cli("est", "credential", "create", "--team", "iot", "--names", "*.iot.example.test")
    assert result.exit_code == 0, result.stderr
    match = re.fullmatch(r"(est_[0-9a-f]{12}):([A-Za-z0-9_-]{43})\n", result.stdout)
    assert match
    username, password = match.groups()
    listed = ca_cli("est", "credential", "list", "--format", "json")
    rows = [r for r in json.loads(listed.stdout) if r["username"] == username]
    assert [(r["team"], r["names"], r["revoked_at"]) for r in rows] == [("iot", ["*.iot.example.test"], None)]
    assert password not in listed.stdout
    assert password not in ca_cli("audit", "list", "--format", "json").stdout
    database = Database(ca_cli.db_url)
    try:
        with database.engine.connect() as conn:
            query = text("SELECT secret_sha256 FROM est_credentials WHERE id = :id")
            stored = conn.execute(query, {"id": username.removeprefix("est_")}).scalar_one()
    finally:
        database.dispose()
    assert stored == hashlib.sha256(password.encode()).hexdigest()


def test_create_with_format_json_prints_the_record_and_the_password(ca_cli: Cli) -> None:
    result = ca_cli(
        "est", "credential", "create", "--team", "iot", "--profile", "tls-client", "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)
    assert (created["team"], created["profile"], created["revoked_at"]) == ("iot", "tls-client", None)
    assert created["username"] == f"est_{created['id']}"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", created["password"])
    assert "secret_sha256" not in created


def test_revoke(ca_cli: Cli) -> None:
    username = ca_cli("est", "credential", "create", "--team", "iot").stdout.split(":")[0]
    result = ca_cli("est", "credential", "revoke", username)
    assert (result.exit_code, result.stdout) == (0, f"EST credential {username} revoked\n")
    rows = json.loads(ca_cli("est", "credential", "list", "--format", "json").stdout)
    assert [r["revoked_at"] is not None for r in rows if r["username"] == username] == [True]
    again = ca_cli("est", "credential", "revoke", username)
    assert again.exit_code == 2
    assert again.stderr == f"error: no active EST credential '{username.removeprefix('est_')}'\n"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--team", " "], "error: an EST credential needs a team\n"),
        (["--team", "iot", "--profile", "nope"], "error: unknown profile 'nope'"),
        (["--team", "iot", "--names", ""], "error: empty name pattern\n"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(ca_cli: Cli, args: list[str], reason: str) -> None:
    result = ca_cli("est", "credential", "create", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(reason), result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""

"""`certfleet scep challenge create|list`, `scep pending|approve|reject`: the challenge is
printed alone, once, stored hashed; bad input is one line and exit 2 with nothing stored."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import Cli
from tests.services.snapshot import rows


def test_create_prints_the_challenge_alone_once_and_stores_only_its_hash(ca_cli: Cli) -> None:
    result = ca_cli(
        "scep", "challenge", "create", "--team", "printers", "--names", "*.lab.example.test", "--uses", "3",
        "--ttl", "12h", "--manual-approval",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]{32}\n", result.stdout)
    challenge_id, secret = result.stdout.strip().split("-")
    listed = json.loads(ca_cli("scep", "challenge", "list", "--format", "json").stdout)
    assert [(c["id"], c["team"], c["allow_names"], c["uses_left"], c["manual_approval"]) for c in listed] == [
        (challenge_id, "printers", ["*.lab.example.test"], 3, True)
    ]
    assert secret not in json.dumps(listed)
    assert secret not in ca_cli("audit", "list", "--format", "json").stdout
    from certfleet.store import Database

    database = Database(ca_cli.db_url)
    try:
        assert secret not in str(rows(database, "SELECT * FROM scep_challenges"))
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--team", "t", "--ttl", "soon"), "bad duration 'soon'"),
        (("--team", "t", "--uses", "0"), "--uses must be at least 1"),
        (("--team", "t", "--profile", "scep-ra"), "unknown profile 'scep-ra'"),
        (("--team", "t", "--profile", "nope"), "unknown profile 'nope'"),
        (("--team", "t", "--names", "a.*.example.test"), "bad name pattern"),
        (("--team", " "), "a challenge needs a team"),
    ],
)
def test_bad_challenge_requests_are_refused(ca_cli: Cli, args: tuple[str, ...], reason: str) -> None:
    before = ca_cli("scep", "challenge", "list", "--format", "json").stdout
    result = ca_cli("scep", "challenge", "create", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and reason in result.stderr
    assert ca_cli("scep", "challenge", "list", "--format", "json").stdout == before


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_approving_or_rejecting_an_unknown_transaction_is_one_line(ca_cli: Cli, command: str) -> None:
    result = ca_cli("scep", command, "no-such-transaction")
    assert result.exit_code == 2
    assert result.stderr == "error: no SCEP transaction 'no-such-transaction'\n"


def test_pending_lists_nothing_at_first(ca_cli: Cli) -> None:
    assert json.loads(ca_cli("scep", "pending", "--format", "json").stdout) == []

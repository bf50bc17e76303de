"""`certfleet token create|list|revoke`: the token is printed alone, once; never listed."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import Cli


def test_create_prints_the_token_alone_once(ca_cli: Cli) -> None:
    result = ca_cli("token", "create", "--team", "web", "--scope", "issue", "--allow-names", "*.example.com")
    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(r"cf_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\n", result.stdout)
    token = result.stdout.strip()
    secret = token.split("_", 2)[2]
    listed = ca_cli("token", "list", "--format", "json")
    rows = [r for r in json.loads(listed.stdout) if r["id"] == token.split("_")[1]]
    assert [(r["team"], r["scope"], r["allow_names"], r["revoked_at"]) for r in rows] == [
        ("web", "issue", ["*.example.com"], None)
    ]
    assert secret not in listed.stdout
    assert secret not in ca_cli("audit", "list", "--format", "json").stdout


def test_revoke(ca_cli: Cli) -> None:
    token_id = ca_cli("token", "create", "--team", "web").stdout.strip().split("_")[1]
    result = ca_cli("token", "revoke", token_id)
    assert (result.exit_code, result.stdout) == (0, f"token {token_id} revoked\n")
    rows = json.loads(ca_cli("token", "list", "--format", "json").stdout)
    assert [r["revoked_at"] is not None for r in rows if r["id"] == token_id] == [True]
    again = ca_cli("token", "revoke", token_id)
    assert again.exit_code == 2
    assert again.stderr == f"error: no active token '{token_id}'\n"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--team", "web", "--scope", "root"), "unknown scope 'root'"),
        (("--team", "web", "--scope", "issue"), "needs at least one --allow-names"),
        (("--team", "web", "--scope", "revoke"), "revoke scope needs at least one --allow-names"),
        (("--team", " "), "a token needs a team"),
        (("--team", "web", "--scope", "issue", "--allow-names", "a.*.example.com"), "bad name pattern"),
        (("--team", "web", "--scope", "issue", "--allow-names", "10.0.0.0/33"), "bad network pattern"),
    ],
)
def test_bad_token_requests_are_refused(ca_cli: Cli, args: tuple[str, ...], reason: str) -> None:
    before = ca_cli("token", "list", "--format", "json").stdout
    result = ca_cli("token", "create", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and reason in result.stderr
    assert ca_cli("token", "list", "--format", "json").stdout == before


def test_a_revoke_token_is_created_with_its_patterns(ca_cli: Cli) -> None:
    args = ("token", "create", "--team", "web", "--scope", "revoke", "--allow-names", "*.ci.example.com")
    result = ca_cli(*args)
    assert result.exit_code == 0, result.stderr
    token_id = result.stdout.strip().split("_")[1]
    rows = json.loads(ca_cli("token", "list", "--format", "json").stdout)
    assert [(r["scope"], r["allow_names"]) for r in rows if r["id"] == token_id] == [
        ("revoke", ["*.ci.example.com"])
    ]

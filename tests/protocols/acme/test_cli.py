"""``certfleet acme``: EAB keys and renew-now, with precise errors."""

from __future__ import annotations

from tests.conftest import Cli


def test_eab_create_prints_kid_and_key_once(cli: Cli) -> None:
    assert cli("init").exit_code == 0
    result = cli("acme", "eab", "create", "--team", "web", "--allow-names", "*.web.example.test")
    assert result.exit_code == 0, result.stderr
    fields = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert fields["kid"].startswith("kid-")
    assert len(fields["hmac_key"]) == 43  # 32 bytes, base64url without padding
    listed = cli("acme", "eab", "list", "--format", "json")
    assert fields["kid"] in listed.stdout
    assert fields["hmac_key"] not in listed.stdout


def test_eab_create_refuses_bad_patterns(cli: Cli) -> None:
    assert cli("init").exit_code == 0
    result = cli("acme", "eab", "create", "--team", "web", "--allow-names", "a.*.example.test")
    assert result.exit_code == 2
    assert "bad name pattern" in result.stderr
    assert "Traceback" not in result.stderr


def test_renew_now_needs_a_target_and_reports_each(cli: Cli) -> None:
    assert cli("init").exit_code == 0
    none = cli("acme", "renew-now")
    assert none.exit_code == 2 and "give serials" in none.stderr
    both = cli("acme", "renew-now", "abc", "--all")
    assert both.exit_code == 2
    missing = cli("acme", "renew-now", "abc123")
    assert missing.exit_code == 1
    assert "abc123: no certificate issued by certfleet" in missing.stderr


def test_renew_now_by_team(cli: Cli, tmp_path: object) -> None:
    assert cli("init").exit_code == 0
    out = str(__import__("pathlib").Path(str(tmp_path)) / "out")
    assert cli("issue", "--san", "a.example.test", "--team", "web", "--out", out).exit_code == 0
    result = cli("acme", "renew-now", "--team", "web")
    assert result.exit_code == 0, result.stderr
    assert "1 of 1 certificates will renew" in result.stdout

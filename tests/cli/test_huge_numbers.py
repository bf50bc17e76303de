"""Absurdly large numbers are refused with one line, never an overflow traceback."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli


def test_huge_validity_is_refused_as_too_long(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").exit_code == 0
    result = cli("issue", "--san", "a.example.test", "--days", "1000000000000", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: validity of 1000000000000 days exceeds profile tls-server's maximum of 398 days"
    ]
    assert not (tmp_path / "o").exists()


def test_huge_expiring_window_is_refused(cli: Cli) -> None:
    assert cli("init").exit_code == 0
    result = cli("inventory", "list", "--expiring", "100000000000000")
    assert result.exit_code == 2
    assert "--expiring must be between 0 and" in result.stderr
    assert "Traceback" not in result.stderr

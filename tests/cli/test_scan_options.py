"""`certfleet scan net|files` convert their own option values (cli._common.TakesText, so that
typer does not import pydantic to check them): a bad value is still a usage error naming the
option, exit 2, before anything is opened; good values reach the scan typed."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_usage import run
from tests.conftest import Cli


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["scan", "net", "127.0.0.1", "--concurrency", "many"],
            "Invalid value for '--concurrency': 'many' is not a valid integer.",
        ),
        (
            ["scan", "net", "127.0.0.1", "--timeout", "soon"],
            "Invalid value for '--timeout': 'soon' is not a valid number.",
        ),
        (
            ["scan", "net", "127.0.0.1", "--expiring-days", "1.5"],
            "Invalid value for '--expiring-days': '1.5' is not a valid integer.",
        ),
        (
            ["scan", "files", ".", "--max-file-size", "big"],
            "Invalid value for '--max-file-size': 'big' is not a valid integer.",
        ),
        (
            ["scan", "files", ".", "--format", "xml"],
            "Invalid value for '--format': 'xml' is not one of 'table', 'json', 'csv'.",
        ),
        (
            ["inventory", "list", "--expiring", "soon"],
            "Invalid value for '--expiring': 'soon' is not a valid integer.",
        ),
    ],
)
def test_a_bad_option_value_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    code, out, err = run(capsys, *args)

    assert code == 2, err
    assert out == ""
    assert err.splitlines()[-1] == f"Error: {error}", err
    assert "Traceback" not in err


def test_typed_values_reach_the_scan(initialized: Cli) -> None:
    cert_dir = initialized.data_dir / "empty"
    cert_dir.mkdir()

    result = initialized(
        "scan", "files", str(cert_dir), "--max-file-size", "1000", "--expiring-days", "7", "--format", "json"
    )

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scan"]["kind"] == "files"

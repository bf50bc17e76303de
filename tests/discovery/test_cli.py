"""``certfleet scan files|net`` and ``certfleet findings list`` in-process."""

from __future__ import annotations

import csv
import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import Cli
from tests.discovery.pki import Pki, key_pem, pem


def _tree(tmp_path: Path) -> Pki:
    pki = Pki("Cli")
    leaf = pki.leaf(["cli.test"], key=None)
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "cert.pem").write_bytes(pem(leaf.cert, pki.intermediate.cert))
    (tmp_path / "srv" / "key.pem").write_bytes(key_pem(leaf.key))
    (tmp_path / "srv" / "key.pem").chmod(0o600)
    (tmp_path / "root.pem").write_bytes(pem(pki.root.cert))
    return pki


def test_scan_files_then_list_findings(cli: Cli, tmp_path: Path) -> None:
    _tree(tmp_path)
    assert cli("init").exit_code == 0
    scan = cli(
        "scan",
        "files",
        str(tmp_path / "srv"),
        str(tmp_path / "missing"),
        "--trust",
        str(tmp_path / "root.pem"),
    )
    assert scan.exit_code == 0, scan.stderr
    assert "Summary" in scan.stdout and "does not exist" in scan.stdout
    assert scan.stderr == ""  # no progress bar when stdout is not a terminal
    listed = cli("findings", "list", "--format", "json")
    assert [(f["code"], Path(f["location"]).name) for f in json.loads(listed.stdout)] == [
        ("unencrypted-private-key", "key.pem")
    ]
    assert json.loads(cli("findings", "list", "--severity", "high", "--format", "json").stdout) == []
    as_csv = list(
        csv.DictReader(
            io.StringIO(
                cli("findings", "list", "--code", "unencrypted-private-key", "--format", "csv").stdout
            )
        )
    )
    assert [row["code"] for row in as_csv] == ["unencrypted-private-key"]
    failing = cli(
        "scan", "files", str(tmp_path / "srv"), "--fail-on", "medium", "--quiet", "--format", "json"
    )
    assert failing.exit_code == 1
    assert json.loads(failing.stdout)["scan"]["status"] == "completed"


def test_bad_input_is_one_line_and_exit_2(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").exit_code == 0
    for args, message in (
        (("scan", "net", "host:0"), "bad port"),
        (("scan", "net", "10.0.0.0/8"), "at most"),
        (("scan", "net", "a.test", "--ports", "x"), "bad port"),
        (("scan", "net", "a.test", "--fail-on", "dire"), "unknown severity"),
        (("scan", "net", "a.test", "--timeout", "0"), "timeout"),
        (("scan", "files", str(tmp_path), "--trust", str(tmp_path / "nope.pem")), "cannot read --trust"),
        (("findings", "list", "--code", "nope"), "unknown finding code"),
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_progress_bar_shows_on_a_terminal_only(cli: Cli, tmp_path: Path) -> None:
    """Under a pseudo-terminal (``script``) the live bar is drawn; piped, it is not."""
    assert cli("init").exit_code == 0
    certfleet = Path(sys.executable).with_name("certfleet")
    command = shlex.join(
        [str(certfleet), "scan", "net", "127.0.0.1:1", "--data-dir", str(cli.data_dir), "--db", cli.db_url]
    )
    on_tty = subprocess.run(
        ["script", "-qec", command, "/dev/null"], capture_output=True, text=True, check=False
    )
    assert on_tty.returncode == 0, on_tty.stdout
    assert "certificates 0  errors 1" in on_tty.stdout
    piped = subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)
    assert piped.returncode == 0 and "errors 1" not in piped.stdout + piped.stderr
    assert "Summary" in piped.stdout

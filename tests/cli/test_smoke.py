from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import Cli


def test_init_issue_list_verify(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").exit_code == 0
    out = tmp_path / "out"
    result = cli("issue", "--cn", "www.example.test", "--san", "www.example.test", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    root = cli("ca", "root")
    (tmp_path / "root.pem").write_text(root.stdout)
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(tmp_path / "root.pem"),
            "-untrusted",
            str(out / "chain.pem"),
            str(out / "cert.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert (out / "key.pem").stat().st_mode & 0o777 == 0o600


def test_init_twice_refuses(cli: Cli) -> None:
    assert cli("init").exit_code == 0
    again = cli("init")
    assert again.exit_code == 2
    assert "already has a CA" in again.stderr
    assert "Traceback" not in again.stderr

"""``certfleet audit list|verify`` against a real ``certfleet serve``: the entries local mode
lists, a tampered chain caught remotely exactly as locally (same line, exit 1), signed
checkpoints checked on the server, and a narrow token refused in one line with exit 2."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.remote import RemoteCli
from tests.cli.test_remote_commands import _issue


@contextlib.contextmanager
def _tampered(remote_cli: RemoteCli) -> Iterator[int]:
    """The newest entry's actor edited in the server's database behind its back (restored
    afterwards: the server is shared by the session's tests)."""
    database = sqlite3.connect(remote_cli.server.data_dir / "certfleet.db", timeout=30)
    try:
        seq, actor = database.execute("SELECT seq, actor FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        with database:
            database.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = ?", (seq,))
        try:
            yield seq
        finally:
            with database:
                database.execute("UPDATE audit_log SET actor = ? WHERE seq = ?", (actor, seq))
    finally:
        database.close()


def test_list_prints_what_local_mode_prints(remote_cli: RemoteCli, tmp_path: Path) -> None:
    serial = _issue(remote_cli, tmp_path / "a", "audit-remote.example.test").replace(":", "").lower()
    for fmt in ("json", "csv", "table"):
        remote = remote_cli("audit", "list", "--format", fmt)
        local = remote_cli.local("audit", "list", "--format", fmt)
        assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
        assert remote.stdout == local.stdout, fmt
    remote = remote_cli("audit", "list", "--serial", serial, "--format", "json")
    assert remote.stdout == remote_cli.local("audit", "list", "--serial", serial, "--format", "json").stdout
    assert '"action": "certificate.issued"' in remote.stdout
    bad = remote_cli("audit", "list", "--serial", "xyz")
    assert (bad.exit_code, bad.stderr) == (2, remote_cli.local("audit", "list", "--serial", "xyz").stderr)


def test_list_walks_every_page_of_a_server(remote_cli: RemoteCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("certfleet.cli.audit.PAGE_SIZE", 3)  # a page of 3 entries: many requests
    remote = remote_cli("audit", "list", "--format", "json")
    local = remote_cli.local("audit", "list", "--format", "json")
    assert remote.exit_code == 0, remote.stderr
    assert remote.stdout == local.stdout
    assert len(json.loads(remote.stdout)) > 3


def test_verify_detects_a_tampered_chain_remotely_as_locally(remote_cli: RemoteCli) -> None:
    intact = remote_cli("audit", "verify")
    assert intact.exit_code == 0, intact.stderr
    assert intact.stdout == remote_cli.local("audit", "verify").stdout
    assert intact.stdout.startswith("audit log OK: ")
    with _tampered(remote_cli) as seq:
        remote, local = remote_cli("audit", "verify"), remote_cli.local("audit", "verify")
    assert remote.exit_code == local.exit_code == 1
    assert (
        remote.stderr
        == local.stderr
        == (f"audit log FAILED verification at entry {seq}: entry {seq} was altered (hash mismatch)\n")
    )
    assert remote_cli("audit", "verify").exit_code == 0  # restored


def test_verify_checks_checkpoints_on_the_server(remote_cli: RemoteCli, tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints.log"
    assert remote_cli.local("audit", "checkpoint", "--out", str(checkpoints)).exit_code == 0
    remote = remote_cli("audit", "verify", "--checkpoint", str(checkpoints))
    local = remote_cli.local("audit", "verify", "--checkpoint", str(checkpoints))
    assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
    assert remote.stdout == local.stdout and "consistent with 1 signed checkpoints" in remote.stdout

    checkpoints.write_text(checkpoints.read_text().replace('"seq":', '"seq":1', 1))  # a forged line
    remote = remote_cli("audit", "verify", "--checkpoint", str(checkpoints))
    local = remote_cli.local("audit", "verify", "--checkpoint", str(checkpoints))
    assert remote.exit_code == local.exit_code == 1
    assert remote.stderr == local.stderr and remote.stderr.startswith(f"checkpoint file {checkpoints} FAILED")


def test_a_narrow_token_cannot_read_the_log(remote_cli: RemoteCli) -> None:
    created = remote_cli.local("token", "create", "--team", "web", "--scope", "read")
    reader = created.stdout.strip().splitlines()[-1]
    for args in (("audit", "list"), ("audit", "verify")):
        refused = remote_cli(*args, token=reader)
        assert (refused.exit_code, refused.stderr) == (
            2,
            "error: this token has scope read; admin is required\n",
        )


def test_checkpoint_runs_beside_the_data_only(remote_cli: RemoteCli, tmp_path: Path) -> None:
    refused = remote_cli("audit", "checkpoint", "--out", str(tmp_path / "c.log"))
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr == (
        "error: certfleet audit checkpoint runs beside the data directory; a remote server is "
        f"configured ({remote_cli.server.url}): unset CERTFLEET_SERVER or run certfleet logout\n"
    )
    assert not (tmp_path / "c.log").exists()

"""``certfleet policy report --preset`` and ``policy apply --preset --dry-run`` against a real
``certfleet serve``: the same JSON local mode prints (the server is shared by the session, so
nothing here stores a policy)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.remote import RemoteCli
from tests.cli.test_remote_commands import _issue


def test_a_preset_report_is_what_local_mode_prints(remote_cli: RemoteCli, tmp_path: Path) -> None:
    _issue(remote_cli, tmp_path / "a", "preset-remote.example.test")
    args = ("policy", "report", "--preset", "cabf-tls", "--preset", "nist-sp800-57", "--format", "json")
    remote = remote_cli(*args)
    assert remote.exit_code == 0, remote.stderr
    assert remote.stdout == remote_cli.local(*args).stdout
    report = json.loads(remote.stdout)
    assert report["source"] == "preset cabf-tls, nist-sp800-57"
    assert all(row["clause"].startswith(row["preset"] + " §") for row in report["violations"])


def test_apply_a_preset_as_a_dry_run_stores_nothing(remote_cli: RemoteCli) -> None:
    before = remote_cli("policy", "history", "--format", "json").stdout
    dry = remote_cli("policy", "apply", "--preset", "nist-sp800-131a", "--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout)["dry_run"] is True
    assert remote_cli("policy", "history", "--format", "json").stdout == before
    unknown = remote_cli("policy", "apply", "--preset", "nist")
    assert unknown.exit_code == 2
    assert len(unknown.stderr.strip().splitlines()) == 1

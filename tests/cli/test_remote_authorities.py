"""``certfleet ca list|show|root|rotate|compromise`` against a real ``certfleet serve``: the
output local mode prints beside the server's data directory, the same confirmation for the
compromise playbook, and an admin-only refusal in one line with exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.remote import RemoteCli
from tests.cli.test_remote_commands import _issue


def _narrow(remote_cli: RemoteCli, scope: str = "read") -> str:
    created = remote_cli.local("token", "create", "--team", "web", "--scope", scope)
    assert created.exit_code == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def _issuing(remote_cli: RemoteCli) -> str:
    rows = json.loads(remote_cli("ca", "list", "--format", "json").stdout)
    return max(
        (r for r in rows if r["role"] == "intermediate" and r["active"]), key=lambda r: r["not_before"]
    )["id"]


def test_list_show_and_root_print_what_local_mode_prints(remote_cli: RemoteCli) -> None:
    for fmt in ("json", "csv", "table"):
        remote = remote_cli("ca", "list", "--format", fmt)
        local = remote_cli.local("ca", "list", "--format", fmt)
        assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
        assert remote.stdout == local.stdout, fmt
        ca_id = _issuing(remote_cli)
        remote = remote_cli("ca", "show", ca_id, "--format", fmt)
        local = remote_cli.local("ca", "show", ca_id, "--format", fmt)
        assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout), fmt
    remote, local = remote_cli("ca", "root"), remote_cli.local("ca", "root")
    assert remote.stdout == local.stdout == remote_cli.server.root.read_text()
    missing = remote_cli("ca", "show", "nope")
    assert (missing.exit_code, missing.stderr) == (
        2,
        "error: no CA with id 'nope': see 'certfleet ca list'\n",
    )
    assert remote_cli.local("ca", "show", "nope").stderr == missing.stderr


def test_a_read_token_reads_the_hierarchy_but_cannot_change_it(remote_cli: RemoteCli) -> None:
    reader = _narrow(remote_cli)
    assert remote_cli("ca", "list", token=reader).exit_code == 0
    before = remote_cli.local("ca", "list", "--format", "json").stdout
    ca_id = _issuing(remote_cli)
    for args in (("ca", "rotate"), ("ca", "compromise", ca_id, "--yes")):
        refused = remote_cli(*args, token=reader)
        assert (refused.exit_code, refused.stderr) == (
            2,
            "error: this token has scope read; admin is required\n",
        ), args
    assert remote_cli.local("ca", "list", "--format", "json").stdout == before


def test_compromise_asks_for_the_same_confirmation_remotely(remote_cli: RemoteCli) -> None:
    ca_id = _issuing(remote_cli)
    before = remote_cli.local("ca", "list", "--format", "json").stdout
    for extra in ((), ("--deadline", "0")):
        remote = remote_cli("ca", "compromise", ca_id, *(("--yes",) if extra else ()), *extra)
        local = remote_cli.local("ca", "compromise", ca_id, *(("--yes",) if extra else ()), *extra)
        assert remote.exit_code == local.exit_code == 2
        assert remote.stderr == local.stderr and len(remote.stderr.splitlines()) == 1
    assert remote_cli.local("ca", "list", "--format", "json").stdout == before  # nothing happened


def test_rotate_then_compromise_remotely_as_locally(remote_cli: RemoteCli) -> None:
    old = _issuing(remote_cli)
    rotated = remote_cli("ca", "rotate", "--format", "json")
    assert rotated.exit_code == 0, rotated.stderr
    result = json.loads(rotated.stdout)
    assert old in result["retired"]
    fresh = result["new_ca"]["id"]
    assert _issuing(remote_cli) == fresh
    assert remote_cli.local("ca", "show", fresh, "--format", "json").exit_code == 0

    # The new CA issued nothing yet: the playbook revokes it and makes another, no campaign.
    first = remote_cli("ca", "compromise", fresh, "--yes")
    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith(f"revoked CA {fresh}; issuing CA is now ")
    assert "no active certificate of that CA to replace" in first.stdout
    shown = json.loads(remote_cli.local("ca", "show", fresh, "--format", "json").stdout)
    assert shown["active"] is False

    # Safe to run again: the same answer remotely and locally, in every format.
    for fmt in ("json", "table"):
        remote = remote_cli("ca", "compromise", fresh, "--yes", "--format", fmt)
        local = remote_cli.local("ca", "compromise", fresh, "--yes", "--format", fmt)
        assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
        assert (remote.stdout, remote.stderr) == (local.stdout, local.stderr), fmt
    again = json.loads(remote_cli("ca", "compromise", fresh, "--yes", "--format", "json").stdout)
    assert again["revoked_ca"] == fresh and again["campaign"] is None and again["campaign_progress"] is None


def test_a_remote_compromise_leaves_its_campaign_to_the_server(remote_cli: RemoteCli, tmp_path: Path) -> None:
    assert remote_cli("ca", "rotate").exit_code == 0  # a CA of this test's own
    ca_id = _issuing(remote_cli)
    _issue(remote_cli, tmp_path / "c", "compromised.example.test")
    result = remote_cli("ca", "compromise", ca_id, "--yes", "--deadline", "6h")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"revoked CA {ca_id}; issuing CA is now ")
    campaign = re.fullmatch(
        r"campaign (\S+) created: the server works it \('certfleet rotate status (\S+)'\)", lines[-2]
    )
    assert campaign and campaign.group(1) == campaign.group(2), lines
    assert lines[-1].startswith("agents and ACME clients renew at their next check; what is not replaced by ")
    status = remote_cli("rotate", "status", campaign.group(1), "--format", "json")
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["kind"] == "compromise"

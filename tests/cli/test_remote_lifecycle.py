"""Scans, findings and rotation campaigns against a real ``certfleet serve``: the server does
the work, the CLI prints what local mode prints for the same data."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from tests.cli.remote import RemoteCli


def test_a_remote_scan_waits_for_the_server_and_its_findings_list_as_locally(remote_cli: RemoteCli) -> None:
    endpoint = urlsplit(remote_cli.server.url).netloc
    scan = remote_cli(
        "scan", "net", endpoint, "--expiring-days", "3650", "--format", "json", "--fail-on", "info"
    )
    assert scan.exit_code == 1, scan.stderr  # --fail-on matched the expiring finding
    run = json.loads(scan.stdout)
    assert run["status"] == "completed"
    assert (run["targets_total"], run["succeeded"]) == (1, 1)
    assert run["certificates_found"] >= 1
    assert any(f["code"] == "expiring" for f in run["findings_list"])
    for fmt in ("json", "csv", "table"):
        remote = remote_cli("findings", "list", "--format", fmt)
        local = remote_cli.local("findings", "list", "--format", fmt)
        assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
        assert remote.stdout == local.stdout, fmt
    assert endpoint in remote_cli("findings", "list", "--format", "csv").stdout


def test_a_bad_scan_target_is_refused_before_anything_is_sent(remote_cli: RemoteCli) -> None:
    result = remote_cli("scan", "net", "*.example.test")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: a wildcard '*.example.test' cannot be scanned")


def test_campaign_dry_run_and_list_print_what_local_mode_prints(
    remote_cli: RemoteCli, tmp_path: Path
) -> None:
    issued = remote_cli(
        "issue", "--out", str(tmp_path / "c"), "--san", "campaign.example.test", "--team", "rot"
    )
    assert issued.exit_code == 0, issued.stderr
    for fmt in ("json", "csv", "table"):
        remote = remote_cli("rotate", "--select", "team=rot", "--dry-run", "--format", fmt)
        local = remote_cli.local("rotate", "--select", "team=rot", "--dry-run", "--format", fmt)
        assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
        assert remote.stdout == local.stdout, fmt
    created = remote_cli("rotate", "--select", "team=rot", "--format", "json")
    assert created.exit_code == 0, created.stderr
    campaign = json.loads(created.stdout)
    assert created.stderr == f"campaign {campaign['id']}: 1 certificates\n"
    for fmt in ("json", "csv", "table"):
        remote = remote_cli("rotate", "list", "--format", fmt)
        local = remote_cli.local("rotate", "list", "--format", fmt)
        assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout), fmt
    status = remote_cli("rotate", "status", campaign["id"], "--items", "--format", "json")
    assert status.exit_code == 0, status.stderr
    assert [i["serial"] for i in json.loads(status.stdout)["items"]] == [campaign_serial(remote_cli)]
    refused = remote_cli(
        "rotate", "--select", "team=rot", "--generate-keys", str(tmp_path / "k"), "--to-key-type", "ec-p384"
    )
    assert refused.exit_code == 2
    assert "does not run remotely" in refused.stderr


def campaign_serial(remote_cli: RemoteCli) -> str:
    listed = json.loads(
        remote_cli("inventory", "list", "--san", "campaign.example.test", "--format", "json").stdout
    )
    return str(listed[0]["serial"])

"""``certfleet acme eab create|list|revoke`` and ``acme renew-now`` against a real ``certfleet
serve``: the output local mode prints beside the server's data directory, exit codes
included, and a narrow token refused in one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.remote import RemoteCli
from tests.cli.test_remote_commands import _issue


def test_eab_keys_remotely_as_locally(remote_cli: RemoteCli) -> None:
    created = remote_cli(
        "acme", "eab", "create", "--team", "payments", "--allow-names", "**.pay.example.test"
    )
    assert created.exit_code == 0, created.stderr
    lines = created.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["kid", "hmac_key"]
    kid = lines[0].removeprefix("kid: ")
    as_json = json.loads(remote_cli("acme", "eab", "create", "--team", "web", "--format", "json").stdout)
    assert set(as_json) == {"kid", "hmac_key", "key"} and as_json["key"]["team"] == "web"

    for fmt in ("json", "csv", "table"):
        remote = remote_cli("acme", "eab", "list", "--format", fmt)
        local = remote_cli.local("acme", "eab", "list", "--format", fmt)
        assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
        assert remote.stdout == local.stdout, fmt
        assert lines[1].removeprefix("hmac_key: ") not in remote.stdout  # shown once, never listed

    revoked = remote_cli("acme", "eab", "revoke", kid)
    assert (revoked.exit_code, revoked.stdout) == (0, f"external account key {kid} revoked\n")
    listed = json.loads(remote_cli("acme", "eab", "list", "--format", "json").stdout)
    assert kid not in [k["kid"] for k in listed]
    remote, local = remote_cli("acme", "eab", "revoke", kid), remote_cli.local("acme", "eab", "revoke", kid)
    assert (
        (remote.exit_code, remote.stderr)
        == (local.exit_code, local.stderr)
        == (
            2,
            f"error: no external account key {kid!r}\n",
        )
    )


def test_a_narrow_token_is_refused_like_the_cli_beside_the_data_never_is(remote_cli: RemoteCli) -> None:
    created = remote_cli.local(
        "token", "create", "--team", "payments", "--scope", "issue", "--allow-names", "*.pay.example.test"
    )
    narrow = created.stdout.strip().splitlines()[-1]
    for args in (
        ("acme", "eab", "list"),
        ("acme", "eab", "create", "--team", "payments"),
        ("acme", "renew-now", "--team", "payments"),
    ):
        refused = remote_cli(*args, token=narrow)
        assert (refused.exit_code, refused.stderr) == (
            2,
            "error: this token has scope issue; admin is required\n",
        )


def test_renew_now_remotely_as_locally(remote_cli: RemoteCli, tmp_path: Path) -> None:
    serial = _issue(remote_cli, tmp_path / "a", "ari-remote.example.test").replace(":", "").lower()
    serial = serial.lstrip("0") or "0"
    remote = remote_cli("acme", "renew-now", serial)
    local = remote_cli.local("acme", "renew-now", serial)
    assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
    assert remote.stdout == local.stdout
    assert remote.stdout.endswith("1 of 1 certificates will renew at the next ARI check\n")

    for args in (
        ("acme", "renew-now", serial, "abcdef"),
        ("acme", "renew-now"),
        ("acme", "renew-now", serial, "--all"),
    ):
        remote, local = remote_cli(*args), remote_cli.local(*args)
        assert (remote.exit_code, remote.stdout, remote.stderr) == (
            local.exit_code,
            local.stdout,
            local.stderr,
        ), args
        assert remote.exit_code in (1, 2) and remote.stderr


def test_overrides_listed_and_cleared_remotely_as_locally(remote_cli: RemoteCli, tmp_path: Path) -> None:
    serial = _issue(remote_cli, tmp_path / "o", "override.example.test").replace(":", "").lower().lstrip("0")
    assert remote_cli("acme", "renew-now", serial).exit_code == 0
    for fmt in ("json", "csv", "table"):
        remote = remote_cli("acme", "overrides", "list", "--format", fmt)
        local = remote_cli.local("acme", "overrides", "list", "--format", fmt)
        assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
        assert remote.stdout == local.stdout, fmt
    listed = json.loads(remote_cli("acme", "overrides", "list", "--format", "json").stdout)
    assert serial in [o["serial"] for o in listed]
    cleared = remote_cli("acme", "overrides", "clear", serial)
    assert (cleared.exit_code, cleared.stdout) == (0, f"{serial}: renewal window back to the default\n")
    remote = remote_cli("acme", "overrides", "clear", serial)
    local = remote_cli.local("acme", "overrides", "clear", serial)
    assert (
        (remote.exit_code, remote.stderr)
        == (local.exit_code, local.stderr)
        == (
            2,
            f"error: no renewal override for serial {serial!r}\n",
        )
    )

"""``certfleet notify`` against a real ``certfleet serve``: channels are added, listed, test-sent
and removed on the server, deliveries read from it, each printing what local mode prints; the
dispatch pass refuses to run away from the data; a narrow token gets the server's refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.remote import RemoteCli
from tests.lifecycle.notifications.receivers import HttpReceiver


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    running = HttpReceiver()
    yield running
    running.close()


def _add(remote_cli: RemoteCli, receiver: HttpReceiver, tmp_path: Path, team: str) -> str:
    secret = tmp_path / "secret"
    secret.write_text("remote-s3cret\n")
    added = remote_cli(
        "notify", "channel", "add", "--type", "webhook", "--team", team, "--url", receiver.url,
        "--secret-file", str(secret), "--name", f"{team}-hook",
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    words = added.stdout.split()
    assert words[:3] == ["Added", "webhook", "channel"] and added.stdout.endswith(f" for {team}\n")
    return words[3]


def test_channels_added_remotely_list_test_and_remove_as_locally(
    remote_cli: RemoteCli, receiver: HttpReceiver, tmp_path: Path
) -> None:
    channel_id = _add(remote_cli, receiver, tmp_path, "notify-remote")

    for args in (
        ("notify", "channel", "list", "--format", "json"),
        ("notify", "channel", "list", "--team", "notify-remote", "--format", "csv"),
        ("notify", "channel", "list", "--team", "notify-remote"),
    ):
        remote, local = remote_cli(*args), remote_cli.local(*args)
        assert remote.exit_code == local.exit_code == 0, (remote.stderr, local.stderr)
        assert remote.stdout == local.stdout, args
    listed = json.loads(
        remote_cli("notify", "channel", "list", "--team", "notify-remote", "--format", "json").stdout
    )
    assert [(c["id"], c["target"], c["secret"]) for c in listed] == [(channel_id, receiver.url, True)]
    assert "remote-s3cret" not in remote_cli("notify", "channel", "list", "--format", "json").stdout

    tested = remote_cli("notify", "test", channel_id)

    assert (tested.exit_code, tested.stdout) == (0, "Delivered: HTTP 204\n")
    assert [e["event"] for e in receiver.events()] == ["test"]  # sent by the server
    receiver.status = 500
    failed = remote_cli("notify", "test", channel_id)
    assert (failed.exit_code, failed.stderr) == (
        1,
        "error: test delivery failed: HTTP 500 Internal Server Error\n",
    )

    removed = remote_cli("notify", "channel", "remove", channel_id)

    assert (removed.exit_code, removed.stdout) == (0, f"Removed channel {channel_id}\n")
    again, local = (
        remote_cli("notify", "channel", "remove", channel_id),
        remote_cli.local("notify", "channel", "remove", channel_id),
    )
    assert again.exit_code == local.exit_code == 2
    assert again.stderr == local.stderr == f"error: no notification channel '{channel_id}'\n"


def test_deliveries_equal_local_mode_and_bad_filters_are_the_same_refusal(remote_cli: RemoteCli) -> None:
    for args in (
        ("notify", "deliveries", "--format", "json"),
        ("notify", "deliveries", "--state", "delivered", "--limit", "3", "--format", "csv"),
    ):
        remote, local = remote_cli(*args), remote_cli.local(*args)
        assert remote.exit_code == local.exit_code == 0
        assert remote.stdout == local.stdout, args
    remote, local = (
        remote_cli("notify", "deliveries", "--state", "lost"),
        remote_cli.local("notify", "deliveries", "--state", "lost"),
    )
    assert remote.exit_code == local.exit_code == 2
    assert remote.stderr == local.stderr
    assert remote.stderr.startswith("error: unknown state 'lost': expected one of pending, delivered")


def test_bad_channels_are_refused_with_the_local_message(remote_cli: RemoteCli, tmp_path: Path) -> None:
    before = remote_cli("notify", "channel", "list", "--format", "json").stdout
    for args in (
        ("--type", "pager", "--url", "https://x.example.test/"),
        ("--type", "webhook"),
        ("--type", "webhook", "--url", "https://h.example.test/", "--event", "exploded"),
        ("--type", "email", "--url", "smtp://h.example.test", "--from", "c@d.test"),
    ):
        remote, local = (
            remote_cli("notify", "channel", "add", *args),
            remote_cli.local("notify", "channel", "add", *args),
        )
        assert remote.exit_code == local.exit_code == 2, args
        assert remote.stderr == local.stderr, args
    relative = remote_cli(
        "notify", "channel", "add", "--type", "email", "--url", "smtp://h.example.test", "--to", "a@b.test",
        "--from", "c@d.test", "--ca-file", "smtp-ca.pem",
    )  # fmt: skip
    assert (relative.exit_code, relative.stderr) == (
        2,
        "error: --ca-file names a file on the server: give its absolute path\n",
    )
    assert remote_cli("notify", "channel", "list", "--format", "json").stdout == before


def test_dispatch_runs_only_beside_the_data(remote_cli: RemoteCli) -> None:
    refused = remote_cli("notify", "dispatch")

    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: certfleet notify dispatch runs beside the data directory;")


def test_a_narrow_token_is_refused_every_notify_command(
    remote_cli: RemoteCli, receiver: HttpReceiver, tmp_path: Path
) -> None:
    channel_id = _add(remote_cli, receiver, tmp_path, "notify-narrow")
    reader = remote_cli("token", "create", "--team", "notify-narrow", "--scope", "read").stdout.strip()

    for args in (
        ("notify", "channel", "add", "--type", "webhook", "--url", receiver.url),
        ("notify", "channel", "list"),
        ("notify", "channel", "remove", channel_id),
        ("notify", "test", channel_id),
        ("notify", "deliveries"),
    ):
        refused = remote_cli(*args, token=reader)
        assert (refused.exit_code, refused.stdout) == (2, ""), args
        assert refused.stderr == "error: this token has scope read; admin is required\n", args
    assert receiver.requests == []
    assert remote_cli("notify", "channel", "remove", channel_id).exit_code == 0


def test_add_json_is_the_listed_row_in_both_modes(remote_cli: RemoteCli, receiver: HttpReceiver) -> None:
    args = ("notify", "channel", "add", "--type", "webhook", "--team", "notify-json", "--url", receiver.url)
    remote = remote_cli(*args, "--format", "json")
    local = remote_cli.local(*args, "--format", "json")

    assert remote.exit_code == local.exit_code == 0, (remote.stderr, local.stderr)
    added = [json.loads(remote.stdout), json.loads(local.stdout)]
    listed = json.loads(
        remote_cli("notify", "channel", "list", "--team", "notify-json", "--format", "json").stdout
    )
    assert sorted(listed, key=lambda c: c["id"]) == sorted(added, key=lambda c: c["id"])
    for channel in added:
        assert remote_cli("notify", "channel", "remove", channel["id"]).exit_code == 0

"""``certfleet policy`` and ``certfleet notify`` as a user types them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from certfleet.app import Platform
from tests.conftest import Cli
from tests.lifecycle.notifications.receivers import HttpReceiver

POLICY = """\
rules:
  - name: strong-keys
    key_types: [ec-p256, ec-p384]
    severity: critical
  - name: prefer-short
    enforce: false
    severity: low
    max_validity_days: 30
"""


def _write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_bad_policy_is_one_line_and_exit_2(platform: Platform, cli: Cli, tmp_path: Path) -> None:
    bad = _write(tmp_path, "rules:\n  - name: x\n    key_typez: [ec-p256]\n")
    for command in ("apply", "test"):
        result = cli("policy", command, str(bad))
        assert result.exit_code == 2
        assert (
            result.stderr
            == f"error: {bad}:3: rule 'x': unknown key 'key_typez' (did you mean 'key_types'?)\n"
        )
    missing = cli("policy", "apply", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def test_apply_show_and_history(platform: Platform, cli: Cli, tmp_path: Path) -> None:
    assert "no policy has been applied yet" in cli("policy", "show").stderr
    path = _write(tmp_path, POLICY)
    assert cli("policy", "apply", str(path)).stdout == "Applied policy version 1 (2 rules)\n"
    assert cli("policy", "apply", str(path)).stdout.startswith("Unchanged: version 1")
    shown = cli("policy", "show")
    assert shown.stdout.splitlines()[0].startswith("# policy version 1, applied ")
    assert shown.stdout.split("\n", 1)[1] == POLICY
    as_json = json.loads(cli("policy", "show", "--format", "json").stdout)
    assert as_json["version"] == 1 and as_json["rules"] == 2 and as_json["document"] == POLICY
    history = json.loads(cli("policy", "history", "--format", "json").stdout)
    assert [(h["version"], h["actor"]) for h in history] == [(1, "cli")]
    assert cli("policy", "show", "--version", "7").exit_code == 2


def test_report_formats_and_exit_code(platform: Platform, cli: Cli, tmp_path: Path) -> None:
    weak = cli(
        "issue",
        "--san",
        "weak.example.test",
        "--key-type",
        "rsa-3072",
        "--days",
        "20",
        "--out",
        str(tmp_path / "w"),
    )
    assert weak.exit_code == 0, weak.stderr
    fine = cli("issue", "--san", "fine.example.test", "--days", "20", "--out", str(tmp_path / "f"))
    long = cli("issue", "--san", "long.example.test", "--days", "60", "--out", str(tmp_path / "l"))
    assert fine.exit_code == 0 and long.exit_code == 0
    assert cli("policy", "apply", str(_write(tmp_path, POLICY))).exit_code == 0

    data = json.loads(cli("policy", "report", "--format", "json").stdout)
    found = sorted((v["sans"][0], v["rule"], v["severity"], v["enforce"]) for v in data["violations"])
    assert found == [
        ("long.example.test", "prefer-short", "low", False),
        ("weak.example.test", "strong-keys", "critical", True),
    ]
    assert data["policy_version"] == 1
    counts = {
        "certificates": 3,
        "compliant": 1,
        "violating": 2,
        "violations": 2,
        "by_rule": {"prefer-short": 1, "strong-keys": 1},
    }
    assert data["summary"] == {**counts, "by_team": {"": counts}}  # issued without a team
    table = cli("policy", "report")
    assert "2 of 3 certificates violate the policy" in table.stdout and "strong-keys" in table.stdout
    lines = list(csv.DictReader(io.StringIO(cli("policy", "report", "--format", "csv").stdout)))
    assert sorted(r["rule"] for r in lines) == ["prefer-short", "strong-keys"]
    assert cli("policy", "report").exit_code == 0
    assert cli("policy", "report", "--exit-code", "--format", "csv").exit_code == 1


def test_notify_channel_lifecycle_and_test_send(platform: Platform, cli: Cli, tmp_path: Path) -> None:
    receiver = HttpReceiver()
    try:
        secret = tmp_path / "secret"
        secret.write_text("s3cret\n")
        added = cli(
            "notify",
            "channel",
            "add",
            "--team",
            "a",
            "--type",
            "webhook",
            "--url",
            receiver.url,
            "--secret-file",
            str(secret),
        )
        assert added.exit_code == 0, added.stderr
        channel_id = added.stdout.split()[3]
        listed = json.loads(cli("notify", "channel", "list", "--format", "json").stdout)
        assert [(c["id"], c["team"], c["type"], c["target"], c["secret"]) for c in listed] == [
            (channel_id, "a", "webhook", receiver.url, True)
        ]
        assert "s3cret" not in cli("notify", "channel", "list", "--format", "json").stdout
        tested = cli("notify", "test", channel_id)
        assert tested.exit_code == 0 and tested.stdout == "Delivered: HTTP 204\n"
        assert receiver.events()[0]["event"] == "test"
        issued = cli("issue", "--san", "www.a.example.test", "--team", "a", "--out", str(tmp_path / "o"))
        assert issued.exit_code == 0
        dispatched = json.loads(cli("notify", "dispatch", "--format", "json").stdout)
        assert dispatched["delivered"] == 1
        assert [e["event"] for e in receiver.events()] == ["test", "issued"]
        deliveries = json.loads(cli("notify", "deliveries", "--format", "json").stdout)
        assert [(d["event"], d["state"]) for d in deliveries] == [("issued", "delivered")]
        receiver.status = 500
        failed = cli("notify", "test", channel_id)
        assert (
            failed.exit_code == 1
            and failed.stderr == "error: test delivery failed: HTTP 500 Internal Server Error\n"
        )
        assert cli("notify", "channel", "remove", channel_id).exit_code == 0
        assert json.loads(cli("notify", "channel", "list", "--format", "json").stdout) == []
    finally:
        receiver.close()


def test_notify_refuses_bad_channels_precisely(platform: Platform, cli: Cli) -> None:
    cases = [
        (("--type", "pager", "--url", "https://x.example.test/"), "unknown channel type 'pager'"),
        (("--type", "webhook"), "webhook channel needs a url"),
        (
            ("--type", "slack", "--url", "https://h.example.test/x", "--secret-file", "/nonexistent"),
            "cannot read secret file",
        ),
        (
            ("--type", "webhook", "--url", "https://h.example.test/", "--event", "exploded"),
            "unknown event 'exploded'",
        ),
        (
            ("--type", "webhook", "--url", "https://h.example.test/", "--to", "a@b.test"),
            "--to, --from and --ca-file are for email",
        ),
        (
            ("--type", "email", "--url", "smtp://h.example.test", "--from", "c@d.test"),
            "at least one 'to' address",
        ),
    ]
    for args, error in cases:
        result = cli("notify", "channel", "add", *args)
        assert result.exit_code == 2, args
        assert error in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert cli("notify", "test", "nosuch").exit_code == 2
    assert cli("notify", "deliveries", "--state", "lost").exit_code == 2

"""``certfleet policy`` against a real ``certfleet serve``: apply (and its dry run), show,
history, report and test print exactly what they print beside the server's data, in every
format; a narrow token gets the server's refusal as one line and exit 2.

The server is shared by the session: the policy applied here only reports (``enforce:
false``), so other tests' issuance is never refused, and an empty policy is applied last."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.remote import RemoteCli

REPORTING = """\
rules:
  - name: short-lived
    enforce: false
    severity: low
    max_validity_days: 1
"""


@pytest.fixture
def policy_cli(remote_cli: RemoteCli, tmp_path: Path) -> Iterator[RemoteCli]:
    issued = remote_cli.local(
        "issue", "--san", "policy.remote.example.test", "--days", "20", "--out", str(tmp_path / "o")
    )
    assert issued.exit_code == 0, issued.stderr
    yield remote_cli
    empty = tmp_path / "empty.yaml"
    empty.write_text("rules: []\n")
    assert remote_cli("policy", "apply", str(empty)).exit_code == 0


def test_apply_dry_run_then_apply_show_and_history_equal_local_mode(
    policy_cli: RemoteCli, tmp_path: Path
) -> None:
    file = tmp_path / "reporting.yaml"
    file.write_text(REPORTING)
    before = policy_cli("policy", "history", "--format", "json")
    assert before.exit_code == 0, before.stderr
    latest = max((v["version"] for v in json.loads(before.stdout)), default=0)

    dry = policy_cli("policy", "apply", "--dry-run", str(file))

    assert (dry.exit_code, dry.stdout) == (
        0,
        f"Would apply policy version {latest + 1} (1 rules); nothing stored\n",
    )
    assert policy_cli("policy", "history", "--format", "json").stdout == before.stdout

    applied = policy_cli("policy", "apply", str(file))

    assert (applied.exit_code, applied.stdout) == (0, f"Applied policy version {latest + 1} (1 rules)\n")
    history = json.loads(policy_cli("policy", "history", "--format", "json").stdout)
    assert history[0]["actor"].startswith("token:")  # applied by the token, not by "cli"
    assert (
        policy_cli("policy", "apply", str(file)).stdout
        == f"Unchanged: version {latest + 1} already has this content\n"
    )
    for args in (
        ("policy", "show"),
        ("policy", "show", "--format", "json"),
        ("policy", "show", "--version", str(latest + 1), "--format", "json"),
        ("policy", "history", "--format", "json"),
        ("policy", "history", "--format", "csv"),
        ("policy", "history"),
    ):
        remote, local = policy_cli(*args), policy_cli.local(*args)
        assert remote.exit_code == local.exit_code == 0, (args, remote.stderr, local.stderr)
        assert remote.stdout == local.stdout, args
    missing = policy_cli("policy", "show", "--version", "9999")
    assert (missing.exit_code, missing.stderr) == (2, "error: no policy version 9999\n")
    assert missing.stderr == policy_cli.local("policy", "show", "--version", "9999").stderr


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_report_and_test_equal_local_mode_in_every_format(
    policy_cli: RemoteCli, tmp_path: Path, fmt: str
) -> None:
    file = tmp_path / "reporting.yaml"
    file.write_text(REPORTING)
    assert policy_cli("policy", "apply", str(file)).exit_code == 0

    for args in (
        ("policy", "report", "--format", fmt),
        ("policy", "report", "--format", fmt, "--exit-code"),
        ("policy", "test", str(file), "--format", fmt, "--exit-code"),
    ):
        remote, local = policy_cli(*args), policy_cli.local(*args)
        assert remote.stdout == local.stdout, args
        assert remote.exit_code == local.exit_code, args
    assert "policy.remote.example.test" in policy_cli("policy", "report", "--format", fmt).stdout
    flagged = policy_cli("policy", "report", "--format", fmt, "--exit-code")
    assert flagged.exit_code == 1  # a certificate of 20 days breaks max_validity_days: 1


def test_a_bad_document_is_refused_in_one_line_as_locally(policy_cli: RemoteCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    key_typez: [ec-p256]\n")

    for command in ("apply", "test"):
        remote, local = policy_cli("policy", command, str(bad)), policy_cli.local("policy", command, str(bad))
        assert remote.exit_code == local.exit_code == 2
        assert remote.stderr == local.stderr
        assert remote.stderr.startswith(f"error: {bad}:3: rule 'x': unknown key 'key_typez'")


def test_a_read_token_reads_the_rules_but_is_refused_apply_and_report(
    policy_cli: RemoteCli, tmp_path: Path
) -> None:
    reader = policy_cli("token", "create", "--team", "web", "--scope", "read").stdout.strip()
    file = tmp_path / "reporting.yaml"
    file.write_text(REPORTING)

    assert policy_cli("policy", "history", "--format", "json", token=reader).exit_code == 0
    for args in (("policy", "apply", str(file)), ("policy", "report"), ("policy", "test", str(file))):
        refused = policy_cli(*args, token=reader)
        assert (refused.exit_code, refused.stdout) == (2, ""), args
        assert refused.stderr == "error: this token has scope read; admin is required\n", args

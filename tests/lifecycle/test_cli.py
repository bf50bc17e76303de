"""``certfleet rotate`` and ``certfleet ca rotate|compromise`` in process: output, JSON, and
bad input as one line on stderr with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.fixture
def fleet(cli: Cli, tmp_path: Path) -> Cli:
    assert cli("init", "--ca-name", "Example").exit_code == 0
    for name, key in (
        ("a.example.test", "rsa-2048"),
        ("b.example.test", "rsa-2048"),
        ("c.example.test", "ec-p256"),
    ):
        result = cli("issue", "--san", name, "--key-type", key, "--out", str(tmp_path / name))
        assert result.exit_code == 0, result.stderr
    return cli


def test_dry_run_then_campaign_then_status(fleet: Cli, tmp_path: Path) -> None:
    dry = fleet(
        "rotate", "--select", "key=rsa-2048", "--to-key-type", "ec-p256", "--dry-run", "--format", "json"
    )
    assert dry.exit_code == 0, dry.stderr
    assert [(i["names"], i["action"]) for i in json.loads(dry.stdout)] == [
        (["a.example.test"], "rekey"),
        (["b.example.test"], "rekey"),
    ]
    run = fleet(
        "rotate",
        "--select",
        "key=rsa-2048",
        "--to-key-type",
        "ec-p256",
        "--generate-keys",
        str(tmp_path / "keys"),
        "--format",
        "json",
    )
    assert run.exit_code == 0, run.stderr
    report = json.loads(run.stdout)  # progress lines go to stderr with --format json
    assert report["status"] == "completed" and report["progress"]["reissued"] == 2
    assert run.stderr.count("progress: reissued") == 2
    status = fleet("rotate", "status", report["id"], "--items", "--format", "json")
    items = json.loads(status.stdout)["items"]
    assert {i["state"] for i in items} == {"reissued"} and all(i["successor_serial"] for i in items)
    listed = fleet("rotate", "list", "--format", "json")
    assert [c["id"] for c in json.loads(listed.stdout)] == [report["id"]]
    table = fleet("rotate", "status", report["id"])
    assert "completed" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rotate",), "give --select"),
        (("rotate", "--select", "bogus"), "expected field=value"),
        (("rotate", "--select", "key=rsa", "--to-key-type", "dsa"), "unknown key type"),
        (("rotate", "--select", "key=rsa", "--revoke-old-after", "soon"), "bad duration"),
        (("rotate", "--select", "key=ed25519"), "no managed certificate"),
        (("rotate", "--select", "key=rsa", "--generate-keys", "/tmp/x"), "needs --to-key-type"),
        (("rotate", "status", "nope"), "no campaign"),
        (("ca", "compromise", "abc"), "add --yes"),
        (("ca", "compromise", "abc", "--yes"), "no CA with id"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(fleet: Cli, args: tuple[str, ...], message: str) -> None:
    result = fleet(*args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_ca_rotate_and_compromise(fleet: Cli) -> None:
    before = json.loads(fleet("ca", "list", "--format", "json").stdout)
    [old] = [c["id"] for c in before if c["role"] == "intermediate"]
    rotated = fleet("ca", "rotate", "--format", "json")
    assert rotated.exit_code == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["retired"] == [old] and new["warnings"] == []
    compromised = fleet("ca", "compromise", old, "--yes", "--format", "json")
    assert compromised.exit_code == 0, compromised.stderr
    result = json.loads(compromised.stdout)
    assert result["revoked_ca"] == old and result["campaign_progress"]["reissued"] == 3
    after = {c["id"]: c for c in json.loads(fleet("ca", "list", "--format", "json").stdout)}
    # The compromised CA was already retired: the current one stays, no third intermediate
    assert result["new_ca"]["id"] == new["new_ca"]["id"] and result["retired"] == []
    assert after[old]["active"] is False and len(after) == 3

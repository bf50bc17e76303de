"""`certfleet spiffe init` and `certfleet spiffe entry create|list|show|delete|revoke`:
precise one-line refusals with exit 2, and the entry as the API shows it."""

from __future__ import annotations

import json
import stat

import pytest

from tests.api.spiffe_fixtures import enrol, svid_csr
from tests.conftest import Cli, FakeClock, make_platform

TD = "example.org"
APP = f"spiffe://{TD}/ns/app"
PARENT = f"spiffe://{TD}/agent/host1"


@pytest.fixture
def spiffe_cli(initialized: Cli) -> Cli:
    result = initialized("spiffe", "init", "--trust-domain", TD)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"trust domain {TD}: SPIFFE CA Example SPIFFE CA 1 (")
    return initialized


def test_init_creates_the_spiffe_ca_and_an_encrypted_jwt_key(spiffe_cli: Cli) -> None:
    cas = json.loads(spiffe_cli("ca", "list", "--format", "json").stdout)
    assert [c["role"] for c in cas if c["name"] == "Example SPIFFE CA 1"] == ["spiffe"]
    keys = spiffe_cli.data_dir / "keys"
    jwt_key_files = [p for p in keys.iterdir() if "spiffe-jwt" in p.name]
    assert len(jwt_key_files) == 1
    key_file = jwt_key_files[0]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()  # like the CA keys


def test_init_twice_is_refused_in_one_line(spiffe_cli: Cli) -> None:
    keys = sorted(p.name for p in (spiffe_cli.data_dir / "keys").iterdir())
    cas = spiffe_cli("ca", "list", "--format", "json").stdout
    again = spiffe_cli("spiffe", "init", "--trust-domain", "other.org")
    assert again.exit_code == 2
    assert again.stderr == "error: SPIFFE is already initialised in this data directory\n"
    assert sorted(p.name for p in (spiffe_cli.data_dir / "keys").iterdir()) == keys  # no key made
    assert spiffe_cli("ca", "list", "--format", "json").stdout == cas


def test_init_refuses_a_bad_trust_domain(initialized: Cli) -> None:
    result = initialized("spiffe", "init", "--trust-domain", "Example.ORG")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: trust domain 'Example.ORG' has characters outside [a-z0-9._-]")
    assert result.stderr.count("\n") == 1


def test_entry_create_list_show_delete(spiffe_cli: Cli) -> None:
    created = spiffe_cli(
        "spiffe", "entry", "create", "--spiffe-id", APP, "--parent", PARENT,
        "--selector", "unix:uid:1000", "--selector", "unix:path:/usr/bin/app",
        "--ttl", "30m", "--dns", "app.example.org", "--format", "json",
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    entry = json.loads(created.stdout)
    assert (entry["spiffe_id"], entry["parent_id"], entry["ttl_seconds"]) == (APP, PARENT, 1800)
    assert entry["selectors"] == ["unix:path:/usr/bin/app", "unix:uid:1000"]
    assert entry["dns_names"] == ["app.example.org"]
    assert (entry["svids_issued"], entry["live_svids"]) == (0, 0)
    listed = json.loads(spiffe_cli("spiffe", "entry", "list", "--format", "json").stdout)
    assert [e["id"] for e in listed] == [entry["id"]]
    shown = json.loads(spiffe_cli("spiffe", "entry", "show", entry["id"]).stdout)
    assert shown == entry
    deleted = spiffe_cli("spiffe", "entry", "delete", entry["id"])
    assert (deleted.exit_code, deleted.stdout) == (0, f"deleted {entry['id']}\n")
    assert json.loads(spiffe_cli("spiffe", "entry", "list", "--format", "json").stdout) == []
    gone = spiffe_cli("spiffe", "entry", "show", entry["id"])
    assert (gone.exit_code, gone.stderr) == (2, f"error: no SPIFFE entry {entry['id']}\n")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--spiffe-id", "spiffe://other.org/app", "--selector", "unix:uid:1"], "in different trust domains"),
        (
            ["--spiffe-id", "http://example.org/app", "--selector", "unix:uid:1"],
            "must start with 'spiffe://'",
        ),
        (["--spiffe-id", APP, "--selector", "unix:uid:abc"], "uid must be a decimal number"),
        (["--spiffe-id", APP, "--selector", "uid=1000"], "joined by colons, e.g. unix:uid:1000"),
        (["--spiffe-id", APP, "--selector", "unix:uid:1", "--ttl", "2d"], "outside 300 s to 86400 s"),
        (["--spiffe-id", APP, "--selector", "unix:uid:1", "--ttl", "soon"], "is not a duration"),
        (["--spiffe-id", f"spiffe://{TD}/agent/x", "--selector", "unix:uid:1"], "reserved for agents"),
        (["--spiffe-id", APP, "--selector", "unix:uid:1", "--dns", "bad_name!"], "not a valid host name"),
    ],
)
def test_entry_create_refuses_bad_input_in_one_line(spiffe_cli: Cli, args: list[str], reason: str) -> None:
    result = spiffe_cli("spiffe", "entry", "create", "--parent", PARENT, *args)
    assert result.exit_code == 2, result.stdout
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert reason in result.stderr
    assert json.loads(spiffe_cli("spiffe", "entry", "list", "--format", "json").stdout) == []


def test_an_entry_of_another_trust_domain_is_refused(spiffe_cli: Cli) -> None:
    result = spiffe_cli(
        "spiffe", "entry", "create", "--spiffe-id", "spiffe://other.org/app",
        "--parent", "spiffe://other.org/agent/host1", "--selector", "unix:uid:1",
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == "error: spiffe://other.org/app is not in this server's trust domain example.org\n"


def test_the_same_entry_twice_is_a_conflict(spiffe_cli: Cli) -> None:
    args = ("spiffe", "entry", "create", "--spiffe-id", APP, "--parent", PARENT, "--selector", "unix:uid:1")
    first = spiffe_cli(*args)
    assert first.exit_code == 0, first.stderr
    again = spiffe_cli(*args)
    assert again.exit_code == 2
    assert "already gives" in again.stderr


def test_entries_before_init_are_refused(initialized: Cli) -> None:
    result = initialized(
        "spiffe", "entry", "create", "--spiffe-id", APP, "--parent", PARENT, "--selector", "unix:uid:1"
    )
    assert (result.exit_code, result.stderr) == (
        2,
        "error: SPIFFE is not initialised: run 'certfleet spiffe init --trust-domain NAME'\n",
    )


def test_policy_prefix_rule_refuses_another_teams_prefix(spiffe_cli: Cli, tmp_path: object) -> None:
    from pathlib import Path

    policy = Path(str(tmp_path)) / "policy.yaml"
    policy.write_text(
        "rules:\n"
        "  - name: payments-spiffe\n"
        "    team: payments\n"
        f"    spiffe_id_prefixes: [spiffe://{TD}/ns/payments]\n"
    )
    applied = spiffe_cli("policy", "apply", str(policy))
    assert applied.exit_code == 0, applied.stderr
    base = ("spiffe", "entry", "create", "--parent", PARENT, "--selector", "unix:uid:1", "--team", "payments")
    refused = spiffe_cli(*base, "--spiffe-id", f"spiffe://{TD}/ns/payroll/api")
    assert refused.exit_code == 2
    assert "refused by policy rule 'payments-spiffe'" in refused.stderr
    allowed = spiffe_cli(*base, "--spiffe-id", f"spiffe://{TD}/ns/payments/api")
    assert allowed.exit_code == 0, allowed.stderr


def test_entry_revoke_and_delete_with_revoke(spiffe_cli: Cli, clock: FakeClock) -> None:
    created = spiffe_cli(
        "spiffe", "entry", "create", "--spiffe-id", APP, "--parent", PARENT, "--selector", "unix:uid:1",
        "--format", "json",
    )  # fmt: skip
    entry_id = json.loads(created.stdout)["id"]
    platform = make_platform(spiffe_cli.data_dir, spiffe_cli.db_url, clock)
    try:
        agent = platform.agents.authenticate(enrol(platform, "host1"))
        issued = platform.spiffe.issue_x509(agent, [(entry_id, svid_csr().encode()) for _ in range(3)])
    finally:
        platform.close()
    serials = sorted(format(s.certificate.serial_number, "x") for s in issued)
    revoked = spiffe_cli("spiffe", "entry", "revoke", entry_id, "--reason", "keyCompromise")
    assert revoked.exit_code == 0, revoked.stderr
    assert sorted(revoked.stdout.splitlines()[:-1]) == serials
    assert revoked.stdout.splitlines()[-1] == f"revoked 3 SVID(s) of {entry_id}"
    shown = json.loads(spiffe_cli("spiffe", "entry", "show", entry_id).stdout)
    assert (shown["svids_issued"], shown["live_svids"]) == (3, 0)
    deleted = spiffe_cli("spiffe", "entry", "delete", entry_id, "--revoke")
    assert (deleted.exit_code, deleted.stdout) == (0, f"deleted {entry_id}, revoked 0 SVID(s)\n")
    bad = spiffe_cli("spiffe", "entry", "revoke", "nope")
    assert (bad.exit_code, bad.stderr) == (2, "error: no SPIFFE entry nope\n")

"""``certfleet agent token create|list|revoke|deployments`` against a real ``certfleet serve``:
a join token minted remotely enrols a real agent (``certfleet agent enroll``), the listings
print what local mode prints, revocation reaches the server; a narrow token gets the server's
refusal as one line and exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli.remote import RemoteCli


def _mint(remote_cli: RemoteCli, host: str, *extra: str) -> str:
    minted = remote_cli("agent", "token", "create", "--host", host, "--team", "agents-remote", *extra)
    assert minted.exit_code == 0, minted.stderr
    assert re.fullmatch(r"cfj_[0-9a-f]{12}_\S+\n", minted.stdout)
    fingerprint = remote_cli.server.root_fingerprint
    assert re.fullmatch(
        rf"for host {re.escape(host)}, usable once until \S+Z; enrol with --ca-fingerprint {fingerprint}\n",
        minted.stderr,
    ), minted.stderr
    return minted.stdout.strip()


def _enrol(remote_cli: RemoteCli, token: str, state: Path) -> None:
    enrolled = remote_cli.plain(
        "agent", "enroll", "--server", remote_cli.server.url, "--token", token,
        "--ca-fingerprint", remote_cli.server.root_fingerprint, "--state-dir", str(state),
    )  # fmt: skip
    assert enrolled.exit_code == 0, enrolled.stderr


def test_a_remotely_minted_token_enrols_an_agent_listed_as_locally(
    remote_cli: RemoteCli, tmp_path: Path
) -> None:
    host = "enrol.agents-remote.example.test"
    _enrol(remote_cli, _mint(remote_cli, host), tmp_path / "state")

    for args in (
        ("agent", "list", "--format", "json"),
        ("agent", "list", "--format", "csv"),
        ("agent", "list"),
        ("agent", "deployments", "--format", "json"),
        ("agent", "deployments", "--host", host, "--history", "--format", "csv"),
    ):
        remote, local = remote_cli(*args), remote_cli.local(*args)
        assert remote.exit_code == local.exit_code == 0, (args, remote.stderr, local.stderr)
        assert remote.stdout == local.stdout, args
    agents = json.loads(remote_cli("agent", "list", "--format", "json").stdout)
    assert [(a["team"], a["status"]) for a in agents if a["name"] == host] == [("agents-remote", "active")]


def test_join_token_json_is_the_same_document_in_both_modes(remote_cli: RemoteCli) -> None:
    remote = remote_cli(
        "agent", "token", "create", "--host", "json.agents-remote.example.test", "--format", "json"
    )
    local = remote_cli.local(
        "agent", "token", "create", "--host", "json.agents-remote.example.test", "--format", "json"
    )

    assert remote.exit_code == local.exit_code == 0, (remote.stderr, local.stderr)
    documents = [json.loads(remote.stdout), json.loads(local.stdout)]
    assert [list(d) for d in documents] == [
        ["token", "id", "host", "team", "allow_names", "expires_at", "ca_fingerprint"]
    ] * 2
    assert (
        documents[0]["ca_fingerprint"] == documents[1]["ca_fingerprint"] == remote_cli.server.root_fingerprint
    )


def test_revoke_reaches_the_server_and_twice_is_the_local_refusal(
    remote_cli: RemoteCli, tmp_path: Path
) -> None:
    host = "revoke.agents-remote.example.test"
    _enrol(remote_cli, _mint(remote_cli, host), tmp_path / "state")

    revoked = remote_cli("agent", "revoke", host)

    assert (revoked.exit_code, revoked.stdout) == (0, f"agent {host} revoked\n")
    agents = json.loads(remote_cli.local("agent", "list", "--format", "json").stdout)
    assert [a["status"] for a in agents if a["name"] == host] == ["revoked"]
    again, local = remote_cli("agent", "revoke", host), remote_cli.local("agent", "revoke", host)
    assert again.exit_code == local.exit_code == 2
    assert again.stderr == local.stderr == f"error: agent {host!r} is already revoked\n"


@pytest.mark.parametrize(
    "args",
    [
        ("--host", "ttl.agents-remote.example.test", "--ttl", "8d"),
        ("--host", "ttl.agents-remote.example.test", "--ttl", "soon"),
        ("--host", "not a host"),
        ("--host", "p.agents-remote.example.test", "--allow-names", "a.*.example.test"),
    ],
)
def test_bad_join_tokens_are_refused_with_the_local_message(
    remote_cli: RemoteCli, args: tuple[str, ...]
) -> None:
    remote, local = (
        remote_cli("agent", "token", "create", *args),
        remote_cli.local("agent", "token", "create", *args),
    )

    assert remote.exit_code == local.exit_code == 2
    assert remote.stderr == local.stderr and remote.stdout == ""


def test_a_narrow_token_may_not_mint_join_tokens_or_revoke(remote_cli: RemoteCli, tmp_path: Path) -> None:
    host = "narrow.agents-remote.example.test"
    _enrol(remote_cli, _mint(remote_cli, host), tmp_path / "state")
    reader = remote_cli("token", "create", "--team", "agents-remote", "--scope", "read").stdout.strip()

    for args in (
        ("agent", "token", "create", "--host", "x.agents-remote.example.test"),
        ("agent", "revoke", host),
    ):
        refused = remote_cli(*args, token=reader)
        assert (refused.exit_code, refused.stdout) == (2, ""), args
        assert refused.stderr == "error: this token has scope read; admin is required\n", args
    # the read token still lists its own team's agents, as GET /api/v1/agents always allowed
    mine = json.loads(remote_cli("agent", "list", "--format", "json", token=reader).stdout)
    assert host in [a["name"] for a in mine] and {a["team"] for a in mine} == {"agents-remote"}

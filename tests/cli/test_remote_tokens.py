"""``certfleet token`` against a real ``certfleet serve``: the token is printed alone, once;
list and revoke print what they print beside the server's data; refusals (a bad request, a
narrow token) are the server's detail as one line and exit 2, as local mode's are."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.remote import RemoteCli


def test_create_prints_a_working_token_alone_and_list_equals_local_mode(remote_cli: RemoteCli) -> None:
    created = remote_cli(
        "token", "create", "--team", "web", "--scope", "issue", "--allow-names", "*.example.test"
    )

    assert created.exit_code == 0, created.stderr
    assert re.fullmatch(r"cf_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\n", created.stdout)
    token = created.stdout.strip()
    token_id = token.split("_")[1]
    for fmt in ("json", "csv", "table"):
        remote, local = (
            remote_cli("token", "list", "--format", fmt),
            remote_cli.local("token", "list", "--format", fmt),
        )
        assert remote.exit_code == local.exit_code == 0
        assert remote.stdout == local.stdout, fmt
    listed = json.loads(remote_cli("token", "list", "--format", "json").stdout)
    assert [(t["team"], t["scope"], t["allow_names"]) for t in listed if t["id"] == token_id] == [
        ("web", "issue", ["*.example.test"])
    ]
    assert token.split("_", 2)[2] not in remote_cli("token", "list", "--format", "json").stdout
    # the new token is real: the server knows it, and refuses it what an issue token may not do
    refused = remote_cli("token", "list", token=token)
    assert (refused.exit_code, refused.stderr) == (
        2,
        "error: this token has scope issue; admin is required\n",
    )


def test_revoke_takes_effect_and_twice_is_the_same_refusal_as_locally(remote_cli: RemoteCli) -> None:
    token = remote_cli("token", "create", "--team", "web").stdout.strip()
    token_id = token.split("_")[1]

    revoked = remote_cli("token", "revoke", token_id)

    assert (revoked.exit_code, revoked.stdout) == (0, f"token {token_id} revoked\n")
    again, local = remote_cli("token", "revoke", token_id), remote_cli.local("token", "revoke", token_id)
    assert again.exit_code == local.exit_code == 2
    assert again.stderr == local.stderr == f"error: no active token '{token_id}'\n"
    shut_out = remote_cli("token", "list", token=token)
    assert (shut_out.exit_code, shut_out.stderr) == (2, "error: invalid or revoked API token\n")


@pytest.mark.parametrize(
    "args",
    [
        ("--team", "web", "--scope", "root"),
        ("--team", "web", "--scope", "issue"),
        ("--team", " "),
        ("--team", "web", "--scope", "issue", "--allow-names", "a.*.example.com"),
    ],
)
def test_bad_requests_are_refused_with_the_local_message(
    remote_cli: RemoteCli, args: tuple[str, ...]
) -> None:
    before = remote_cli("token", "list", "--format", "json").stdout

    remote, local = remote_cli("token", "create", *args), remote_cli.local("token", "create", *args)

    assert remote.exit_code == local.exit_code == 2
    assert remote.stderr == local.stderr and remote.stdout == ""
    assert remote_cli("token", "list", "--format", "json").stdout == before


def test_a_narrow_token_is_refused_every_token_command(remote_cli: RemoteCli) -> None:
    reader = remote_cli("token", "create", "--team", "web", "--scope", "read").stdout.strip()
    victim = remote_cli("token", "create", "--team", "ops").stdout.strip().split("_")[1]

    for args in (
        ("token", "create", "--team", "web", "--scope", "admin"),
        ("token", "list"),
        ("token", "revoke", victim),
    ):
        refused = remote_cli(*args, token=reader)
        assert (refused.exit_code, refused.stdout) == (2, ""), args
        assert refused.stderr == "error: this token has scope read; admin is required\n", args
    rows = json.loads(remote_cli("token", "list", "--format", "json").stdout)
    assert [t["revoked_at"] for t in rows if t["id"] == victim] == [None]


def test_create_json_is_the_same_document_in_both_modes(remote_cli: RemoteCli) -> None:
    remote = remote_cli("token", "create", "--team", "web", "--description", "ci", "--format", "json")
    local = remote_cli.local("token", "create", "--team", "web", "--description", "ci", "--format", "json")

    assert remote.exit_code == local.exit_code == 0, (remote.stderr, local.stderr)
    documents = [json.loads(remote.stdout), json.loads(local.stdout)]
    assert [list(d) for d in documents] == [
        ["id", "team", "scope", "allow_names", "description", "created_at", "revoked_at", "token"]
    ] * 2
    assert [(d["team"], d["scope"], d["description"]) for d in documents] == [("web", "read", "ci")] * 2

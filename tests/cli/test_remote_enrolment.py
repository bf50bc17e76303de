"""``certfleet scep`` and ``certfleet est credential`` against a real ``certfleet serve``: the
challenge and the credential are printed alone, once; listings print what they print beside
the server's data; a request a device sends over SCEP is held, then approved or rejected from
the client; refusals (bad input, a narrow token) are one line and exit 2, as locally."""

from __future__ import annotations

import datetime as dt
import json
import re

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tests.cli.remote import RemoteCli
from tests.protocols.scep.client import (
    Message,
    csr,
    envelope_aes,
    ra_certificate,
    read_cert_rep,
    rsa_key,
    self_signed,
)

FORMATS = ("json", "csv", "table")


def _same_in_both_modes(remote_cli: RemoteCli, *command: str) -> str:
    """Each format's output, remote and local, must be equal; the JSON one is returned."""
    for fmt in FORMATS:
        remote, local = remote_cli(*command, "--format", fmt), remote_cli.local(*command, "--format", fmt)
        assert remote.exit_code == local.exit_code == 0, (remote.stderr, local.stderr)
        assert remote.stdout == local.stdout, fmt
    return remote_cli(*command, "--format", "json").stdout


def _device_sends_a_request(remote_cli: RemoteCli, password: str) -> str:
    """A PKCSReq over the server's plain-HTTP SCEP endpoint, as a device sends it: the answer
    is PENDING (the challenge holds requests); the transaction ID."""
    base = f"http://127.0.0.1:{remote_cli.server.process.http_port}/scep"
    ra = ra_certificate(httpx.get(base, params={"operation": "GetCACert"}, trust_env=False).content)
    key = rsa_key()
    request = csr(key, "held.example.test", challenge=password).public_bytes(serialization.Encoding.DER)
    message = Message("19", envelope_aes(request, ra), self_signed(key), key)
    reply = httpx.post(
        base,
        params={"operation": "PKIOperation"},
        content=message.build(),
        headers={"Content-Type": "application/x-pki-message"},
        trust_env=False,
    )
    assert read_cert_rep(reply.content, ra).status == "3"  # PENDING
    return message.transaction_id


def test_scep_challenge_is_printed_alone_once_and_listed_as_locally(remote_cli: RemoteCli) -> None:
    created = remote_cli(
        "scep", "challenge", "create", "--team", "printers", "--names", "*.lab.example.test", "--uses", "2",
        "--ttl", "12h",
    )  # fmt: skip

    assert created.exit_code == 0, created.stderr
    assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]{32}\n", created.stdout)
    challenge_id, secret = created.stdout.strip().split("-")
    listed = json.loads(_same_in_both_modes(remote_cli, "scep", "challenge", "list"))
    (mine,) = [c for c in listed if c["id"] == challenge_id]
    assert (mine["team"], mine["allow_names"], mine["uses_left"], mine["manual_approval"]) == (
        "printers",
        ["*.lab.example.test"],
        2,
        False,
    )
    lifetime = dt.datetime.fromisoformat(mine["expires_at"]) - dt.datetime.fromisoformat(mine["created_at"])
    assert lifetime == dt.timedelta(hours=12)
    assert secret not in remote_cli("scep", "challenge", "list", "--format", "json").stdout


def test_a_held_request_is_pending_then_approved_or_rejected_from_the_client(remote_cli: RemoteCli) -> None:
    password = remote_cli(
        "scep", "challenge", "create", "--team", "printers", "--uses", "2", "--manual-approval"
    ).stdout
    approved_id = _device_sends_a_request(remote_cli, password.strip())
    rejected_id = _device_sends_a_request(remote_cli, password.strip())

    pending = json.loads(_same_in_both_modes(remote_cli, "scep", "pending"))

    assert {approved_id, rejected_id} <= {t["transaction_id"] for t in pending}
    approved = remote_cli("scep", "approve", approved_id)
    assert approved.exit_code == 0, approved.stderr
    serial = re.fullmatch(rf"transaction {approved_id} approved: certificate ([0-9a-f]+)\n", approved.stdout)
    assert serial is not None
    shown = json.loads(remote_cli("inventory", "show", serial.group(1), "--format", "json").stdout)
    assert (shown["source"], shown["team"]) == ("scep", "printers")
    rejected = remote_cli("scep", "reject", rejected_id)
    assert (rejected.exit_code, rejected.stdout) == (0, f"transaction {rejected_id} rejected\n")
    left = json.loads(remote_cli("scep", "pending", "--format", "json").stdout)
    assert not {approved_id, rejected_id} & {t["transaction_id"] for t in left}
    for command, transaction_id, state in (
        ("approve", approved_id, "issued"),
        ("reject", rejected_id, "rejected"),
    ):
        again, local = (
            remote_cli("scep", command, transaction_id),
            remote_cli.local("scep", command, transaction_id),
        )
        assert again.exit_code == local.exit_code == 2
        assert (
            again.stderr == local.stderr == f"error: transaction {transaction_id} is {state}, not pending\n"
        )


def test_est_credential_is_printed_once_listed_as_locally_and_revoked(remote_cli: RemoteCli) -> None:
    created = remote_cli("est", "credential", "create", "--team", "routers", "--names", "*.edge.example.test")

    assert created.exit_code == 0, created.stderr
    assert re.fullmatch(r"est_[0-9a-f]{12}:[A-Za-z0-9_-]{43}\n", created.stdout)
    username, password = created.stdout.strip().split(":")
    listed = json.loads(_same_in_both_modes(remote_cli, "est", "credential", "list"))
    assert [(c["team"], c["names"], c["revoked_at"]) for c in listed if c["username"] == username] == [
        ("routers", ["*.edge.example.test"], None)
    ]
    assert password not in remote_cli("est", "credential", "list", "--format", "json").stdout
    revoked = remote_cli("est", "credential", "revoke", username)
    assert (revoked.exit_code, revoked.stdout) == (0, f"EST credential {username} revoked\n")
    again, local = (
        remote_cli("est", "credential", "revoke", username),
        remote_cli.local("est", "credential", "revoke", username),
    )
    assert again.exit_code == local.exit_code == 2
    assert again.stderr == local.stderr == f"error: no active EST credential '{username[4:]}'\n"


@pytest.mark.parametrize(
    ("command", "keys"),
    [
        (
            ("scep", "challenge", "create", "--team", "printers"),
            ["id", "team", "profile", "allow_names", "uses_left", "manual_approval", "expires_at",
             "created_at", "password"],
        ),
        (
            ("est", "credential", "create", "--team", "routers"),
            ["id", "username", "team", "profile", "names", "created_at", "revoked_at", "password"],
        ),
    ],
)  # fmt: skip
def test_create_json_is_the_same_document_in_both_modes(
    remote_cli: RemoteCli, command: tuple[str, ...], keys: list[str]
) -> None:
    remote, local = remote_cli(*command, "--format", "json"), remote_cli.local(*command, "--format", "json")

    assert remote.exit_code == local.exit_code == 0, (remote.stderr, local.stderr)
    assert [list(json.loads(remote.stdout)), list(json.loads(local.stdout))] == [keys, keys]


@pytest.mark.parametrize(
    "args",
    [
        ("scep", "challenge", "create", "--team", "t", "--uses", "0"),
        ("scep", "challenge", "create", "--team", "t", "--ttl", "soon"),
        ("scep", "challenge", "create", "--team", "t", "--profile", "nope"),
        ("scep", "challenge", "create", "--team", "t", "--names", "a.*.example.test"),
        ("scep", "approve", "no-such-transaction"),
        ("est", "credential", "create", "--team", "t", "--profile", "nope"),
        ("est", "credential", "revoke", "est_000000000000"),
    ],
)
def test_bad_requests_are_refused_with_the_local_message(
    remote_cli: RemoteCli, args: tuple[str, ...]
) -> None:
    remote, local = remote_cli(*args), remote_cli.local(*args)

    assert remote.exit_code == local.exit_code == 2
    assert remote.stderr == local.stderr and remote.stderr.count("\n") == 1
    assert remote.stdout == ""


def test_a_narrow_token_is_refused_every_enrolment_command(remote_cli: RemoteCli) -> None:
    reader = remote_cli("token", "create", "--team", "printers", "--scope", "read").stdout.strip()
    victim = remote_cli("est", "credential", "create", "--team", "routers").stdout.split(":")[0]
    challenges = remote_cli("scep", "challenge", "list", "--format", "json").stdout

    for args in (
        ("scep", "challenge", "create", "--team", "printers"),
        ("scep", "challenge", "list"),
        ("scep", "pending"),
        ("scep", "approve", "any-transaction"),
        ("scep", "reject", "any-transaction"),
        ("est", "credential", "create", "--team", "routers"),
        ("est", "credential", "list"),
        ("est", "credential", "revoke", victim),
    ):
        refused = remote_cli(*args, token=reader)
        assert (refused.exit_code, refused.stdout) == (2, ""), args
        assert refused.stderr == "error: this token has scope read; admin is required\n", args
    assert remote_cli("scep", "challenge", "list", "--format", "json").stdout == challenges
    rows = json.loads(remote_cli("est", "credential", "list", "--format", "json").stdout)
    assert [c["revoked_at"] for c in rows if c["username"] == victim] == [None]

"""The commands whose endpoints exist, run against a real ``certfleet serve``: the same output
as local mode beside the server's data directory, the private key made on the client, and
the server's refusals as one line with exit 2."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.cli.remote import RemoteCli


def _issue(remote_cli: RemoteCli, out: Path, *names: str, token: str | None = None) -> str:
    sans = [arg for name in names for arg in ("--san", name)]
    result = remote_cli("issue", "--out", str(out), *sans, token=token)
    assert result.exit_code == 0, result.stderr
    match = re.fullmatch(
        rf"Issued serial ([0-9A-F:]+|[0-9a-f]+) for {re.escape(', '.join(names))}, valid until "
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\dZ; files in {re.escape(str(out))}\n",
        result.stdout,
    )
    assert match, result.stdout
    return match.group(1)


def test_issue_makes_the_key_here_and_sends_only_a_csr(remote_cli: RemoteCli, tmp_path: Path) -> None:
    out = tmp_path / "web"
    serial = _issue(remote_cli, out, "remote-issue.example.test")
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), password=None)
    certificate = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    assert certificate.public_key() == key.public_key()
    assert (out / "fullchain.pem").read_text().startswith((out / "cert.pem").read_text())
    shown = json.loads(remote_cli("inventory", "show", serial, "--format", "json").stdout)
    assert shown["sans"] == ["remote-issue.example.test"]


def test_listing_and_showing_print_what_local_mode_prints(remote_cli: RemoteCli, tmp_path: Path) -> None:
    serial = _issue(remote_cli, tmp_path / "a", "same-output.example.test")
    for fmt in ("json", "csv", "table"):
        remote = remote_cli("inventory", "list", "--format", fmt)
        local = remote_cli.local("inventory", "list", "--format", fmt)
        assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
        assert remote.stdout == local.stdout, fmt
        remote = remote_cli("inventory", "show", serial, "--format", fmt)
        local = remote_cli.local("inventory", "show", serial, "--format", fmt)
        assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout), fmt
    filtered = remote_cli("inventory", "list", "--san", "same-output.example.test", "--format", "json")
    assert [c["serial"] for c in json.loads(filtered.stdout)] == [serial]


def test_revoke_prints_what_local_mode_prints(remote_cli: RemoteCli, tmp_path: Path) -> None:
    remote_serial = _issue(remote_cli, tmp_path / "r", "revoke-remote.example.test")
    local_serial = _issue(remote_cli, tmp_path / "l", "revoke-local.example.test")
    remote = remote_cli("revoke", remote_serial, "--reason", "superseded")
    local = remote_cli.local("revoke", local_serial, "--reason", "superseded")
    assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
    pattern = r"Revoked serial {} \(superseded\) at \S+Z, issuer CA (\w+); in the inventory\n"
    remote_match = re.fullmatch(pattern.format(re.escape(remote_serial)), remote.stdout)
    local_match = re.fullmatch(pattern.format(re.escape(local_serial)), local.stdout)
    assert remote_match and local_match, remote.stdout + local.stdout
    assert remote_match.group(1) == local_match.group(1)
    again = remote_cli("revoke", remote_serial)
    assert again.exit_code == 2
    assert again.stderr.startswith("error: ") and len(again.stderr.splitlines()) == 1


def test_revoke_by_certificate_and_issuer_works_remotely_for_an_admin_only(
    remote_cli: RemoteCli, tmp_path: Path
) -> None:
    serial = _issue(remote_cli, tmp_path / "k", "by-cert.example.test")
    issuer = json.loads(remote_cli("inventory", "show", serial, "--format", "json").stdout)["issuer_ca_id"]
    narrow = remote_cli.local(
        "token", "create", "--team", "ops", "--scope", "revoke", "--allow-names", "**.example.test"
    )
    refused = remote_cli(
        "revoke", serial, "--cert", str(tmp_path / "k" / "cert.pem"), token=narrow.stdout.strip()
    )
    assert refused.exit_code == 2
    assert (
        refused.stderr
        == "error: only an admin token may revoke by certificate (for one the inventory lost)\n"
    )
    result = remote_cli(
        "revoke",
        serial,
        "--reason",
        "keyCompromise",
        "--issuer",
        issuer,
        "--cert",
        str(tmp_path / "k" / "cert.pem"),
    )
    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(
        rf"Revoked serial {serial} \(keyCompromise\) at \S+Z, issuer CA {issuer}; in the inventory\n",
        result.stdout,
    )
    assert result.stderr == ""  # the key was blocked: no warning
    wrong_issuer = remote_cli(
        "revoke", _issue(remote_cli, tmp_path / "w", "wrong-ca.example.test"), "--issuer", "0" * 16
    )
    assert wrong_issuer.exit_code == 2
    assert wrong_issuer.stderr.startswith("error: ")


def test_a_narrow_token_is_refused_in_one_line(remote_cli: RemoteCli, tmp_path: Path) -> None:
    created = remote_cli.local(
        "token", "create", "--team", "web", "--scope", "issue", "--allow-names", "*.web.example.test"
    )
    assert created.exit_code == 0, created.stderr
    narrow = created.stdout.strip().splitlines()[-1]
    allowed = _issue(remote_cli, tmp_path / "ok", "a.web.example.test", token=narrow)
    refused = remote_cli("issue", "--out", str(tmp_path / "no"), "--san", "db.example.test", token=narrow)
    assert refused.exit_code == 2
    assert refused.stderr == "error: this token may not issue for 'db.example.test'\n"
    assert not (tmp_path / "no").exists()
    other_team = remote_cli(
        "issue", "--out", str(tmp_path / "t"), "--san", "b.web.example.test", "--team", "db", token=narrow
    )
    assert other_team.exit_code == 2
    assert other_team.stderr == "error: this token may issue only for its own team\n"
    revoke = remote_cli("revoke", allowed, token=narrow)
    assert revoke.exit_code == 2
    assert revoke.stderr == "error: this token has scope issue; revoke is required\n"
    listed = json.loads(remote_cli("inventory", "list", "--format", "json", token=narrow).stdout)
    assert {c["team"] for c in listed} == {"web"}


def test_create_commands_print_the_same_json_document_in_both_modes(
    remote_cli: RemoteCli, tmp_path: Path
) -> None:
    remote = remote_cli("token", "create", "--team", "fmt", "--format", "json")
    local = remote_cli.local("token", "create", "--team", "fmt", "--format", "json")
    assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
    remote_token, local_token = json.loads(remote.stdout), json.loads(local.stdout)
    assert list(remote_token) == list(local_token)
    assert remote_token["token"].startswith(f"cf_{remote_token['id']}_")
    assert (
        (remote_token["team"], remote_token["scope"])
        == (local_token["team"], local_token["scope"])
        == ("fmt", "read")
    )

    remote = remote_cli(
        "issue", "--out", str(tmp_path / "r"), "--san", "fmt-r.example.test", "--format", "json"
    )
    local = remote_cli.local(
        "issue", "--out", str(tmp_path / "l"), "--san", "fmt-l.example.test", "--format", "json"
    )
    assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
    remote_issued, local_issued = json.loads(remote.stdout), json.loads(local.stdout)
    assert list(remote_issued["certificate"]) == list(local_issued["certificate"])
    assert remote_issued["files"] == {
        "private_key": str(tmp_path / "r" / "key.pem"),
        "certificate": str(tmp_path / "r" / "cert.pem"),
        "chain": str(tmp_path / "r" / "chain.pem"),
        "fullchain": str(tmp_path / "r" / "fullchain.pem"),
    }
    assert remote_issued["certificate"]["sans"] == ["fmt-r.example.test"]

"""Issue 20's "Done when": from a second data directory with no database, a user who ran
``certfleet login`` applies a policy, mints a token, issues, lists, revokes and verifies the
audit log on a running ``certfleet serve``, each printing what the same command prints beside
the server's data (local mode); a narrow token gets the server's refusals as one line and
exit 2, the very detail the REST API answers it.

Every command is the real ``certfleet`` executable in its own process. The client's
environment names only its own config and data directories (no CERTFLEET_DB, and the data
directory never comes to exist); the local runs name the server's data directory."""

from __future__ import annotations

import json
import os
import re
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.cli.remote import RemoteServerFixture, remote_server

pytestmark = pytest.mark.integration
__all__ = ["remote_server"]  # the fixture: a `certfleet serve --init` of this module's own

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))
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


class Client:
    """``certfleet`` on a second machine: its own home, config and (absent) data directory."""

    def __init__(self, root: Path, server: RemoteServerFixture) -> None:
        self.home = root / "client-home"
        self.config = root / "client-config"
        self.data = root / "client-data"
        self.home.mkdir()
        self.server = server

    def _env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.config), CERTFLEET_HOME=str(self.data))
        env.update(extra)
        return env

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CERTFLEET, *args], capture_output=True, text=True, env=self._env(**env), check=False, timeout=180
        )

    def local(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The same command beside the server's data directory (what an operator on the
        server would run), with nothing of the client's login in sight."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}
        env.update(XDG_CONFIG_HOME=str(self.home / "server-side-config"))
        return subprocess.run(
            [CERTFLEET, *args, "--data-dir", str(self.server.data_dir)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=180,
        )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stdout}{result.stderr}"
    return result.stdout


def _same(remote: subprocess.CompletedProcess[str], local: subprocess.CompletedProcess[str]) -> None:
    assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)


def _rest_detail(server: RemoteServerFixture, token: str, method: str, path: str, body: object) -> str:
    """What the REST API itself answers ``token`` (problem+json's detail)."""
    context = ssl.create_default_context(cafile=str(server.root))
    response = httpx.request(
        method,
        f"{server.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=context,
        trust_env=False,
    )
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail: str = response.json()["detail"]
    return detail


ISSUED = re.compile(
    r"Issued serial ([0-9a-f]+) for (\S+), valid until \d{4}-\d\d-\d\d \d\d:\d\dZ; files in (\S+)\n"
)
REVOKED = re.compile(
    r"Revoked serial ([0-9a-f]+) \(keyCompromise\) at \S+Z, issuer CA (\w+); in the inventory\n"
)


@pytest.mark.timeout(900)  # about 40 start-ups of certfleet, on a machine others share
def test_a_logged_in_client_runs_the_fleet_with_local_modes_output(
    remote_server: RemoteServerFixture, tmp_path: Path
) -> None:
    server = remote_server
    client = Client(tmp_path, server)
    token_file = tmp_path / "admin.token"
    token_file.write_text(server.token + "\n")

    # Given a login: the root pinned by its fingerprint, the token checked and kept 0600.
    login = client(
        "login", server.url, "--ca-fingerprint", server.root_fingerprint, "--token-file", str(token_file)
    )
    assert re.fullmatch(
        rf"Logged in to {re.escape(server.url)} as token:\w+ \(team \S+, scope admin\); saved in \S+\n",
        _ok(login),
    )
    saved = client.config / "certfleet"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in saved.iterdir()} == {
        "remote.json": 0o600,
        "ca.pem": 0o600,
    }
    status = json.loads(_ok(client("status", "--format", "json")))
    assert (status["mode"], status["server"], status["scope"]) == ("remote", server.url, "admin")

    # Apply a policy: the dry run, the apply, and applying it again, as beside the data.
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    _same(
        client("policy", "apply", "--dry-run", str(policy)),
        client.local("policy", "apply", "--dry-run", str(policy)),
    )
    applied = _ok(client("policy", "apply", str(policy)))
    assert re.fullmatch(r"Applied policy version \d+ \(2 rules\)\n", applied)
    _same(client("policy", "apply", str(policy)), client.local("policy", "apply", str(policy)))
    _same(client("policy", "show"), client.local("policy", "show"))

    # Mint a token: printed once; the token list is the same list.
    narrow = _ok(
        client("token", "create", "--team", "web", "--scope", "issue", "--allow-names", "*.web.example.test")
    ).strip()
    assert re.fullmatch(r"cf_\w+_\S+", narrow)
    _same(client("token", "list", "--format", "json"), client.local("token", "list", "--format", "json"))

    # Issue: the key is made on the client (0600); the line is local mode's line.
    out = tmp_path / "issued"
    match = ISSUED.fullmatch(_ok(client("issue", "--san", "www.web.example.test", "--out", str(out))))
    assert match and match.group(2) == "www.web.example.test" and match.group(3) == str(out), match
    serial = match.group(1)
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    local_out = tmp_path / "issued-locally"
    local_match = ISSUED.fullmatch(
        _ok(client.local("issue", "--san", "api.web.example.test", "--out", str(local_out)))
    )
    assert local_match, "local issue prints the same line"
    # The policy refuses the same request the same way from both places.
    weak = ("issue", "--san", "weak.web.example.test", "--key-type", "rsa-2048")
    refused_remote = client(*weak, "--out", str(tmp_path / "weak-r"))
    refused_local = client.local(*weak, "--out", str(tmp_path / "weak-l"))
    assert refused_remote.returncode == refused_local.returncode == 2
    assert refused_remote.stderr == refused_local.stderr
    assert refused_remote.stderr.startswith("error: ") and refused_remote.stderr.count("\n") == 1

    # List and show: the same rows in every format.
    for fmt in ("table", "json", "csv"):
        _same(
            client("inventory", "list", "--format", fmt), client.local("inventory", "list", "--format", fmt)
        )
    _same(client("inventory", "show", serial), client.local("inventory", "show", serial))

    # Revoke: one certificate from each place, the same line for each.
    remote_revoked = REVOKED.fullmatch(_ok(client("revoke", serial, "--reason", "keyCompromise")))
    local_revoked = REVOKED.fullmatch(
        _ok(client.local("revoke", local_match.group(1), "--reason", "keyCompromise"))
    )
    assert remote_revoked and local_revoked
    assert (remote_revoked.group(1), remote_revoked.group(2)) == (serial, local_revoked.group(2))
    twice = (client("revoke", serial), client.local("revoke", serial))
    assert twice[0].returncode == twice[1].returncode == 2
    assert twice[0].stderr == twice[1].stderr

    # Verify the audit log: the same verdict over the same entries.
    verified = client("audit", "verify")
    _same(verified, client.local("audit", "verify"))
    assert "chain intact" in _ok(verified)
    _same(client("audit", "list", "--format", "json"), client.local("audit", "list", "--format", "json"))

    # A narrow token (CI's CERTFLEET_TOKEN over the saved login): what the REST API refuses
    # it, one line and exit 2, as local mode's refusals.
    refusals = [
        (["issue", "--san", "db.example.test", "--out", str(tmp_path / "db")], "POST", "/api/v1/certificates",
         {"key_type": "ec-p256", "sans": ["db.example.test"]}),
        (["policy", "apply", str(policy)], "POST", "/api/v1/policies", {"document": POLICY}),
        (["token", "create", "--team", "web"], "POST", "/api/v1/tokens", {"team": "web"}),
        (["audit", "verify"], "POST", "/api/v1/audit/verify", {}),
        (["revoke", local_match.group(1)], "POST", f"/api/v1/certificates/{local_match.group(1)}/revoke", {}),
    ]  # fmt: skip
    for argv, method, path, body in refusals:
        refused = client(*argv, CERTFLEET_TOKEN=narrow)
        assert refused.returncode == 2, argv
        assert refused.stderr == f"error: {_rest_detail(server, narrow, method, path, body)}\n", argv
    assert not (tmp_path / "db").exists()

    # The client never had a data directory, let alone a database.
    assert not client.data.exists()
    _ok(client("logout"))
    assert not (saved / "remote.json").exists() and not (saved / "ca.pem").exists()
    assert json.loads(_ok(client("status", "--format", "json")))["mode"] == "local"

"""``certfleet login``, ``logout`` and ``status`` against a real ``certfleet serve``: the root is
pinned by fingerprint, the token checked before anything is saved, the login kept 0600 in
the user's config directory, and the environment overriding it for CI jobs."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from tests.agent.peers import self_signed
from tests.cli.remote import RemoteCli
from tests.cli.test_startup import packages, run_fresh
from tests.conftest import CliResult

WRONG_PIN = "ab" * 32


def _token_file(tmp_path: Path, token: str) -> Path:
    path = tmp_path / "token"
    path.write_text(token + "\n")
    return path


def _login(
    remote_cli: RemoteCli, tmp_path: Path, token: str | None = None, pin: str | None = None
) -> CliResult:
    server = remote_cli.server
    return remote_cli.plain(
        "login",
        server.url,
        "--ca-fingerprint",
        pin or server.root_fingerprint,
        "--token-file",
        str(_token_file(tmp_path, token or server.token)),
    )


def test_login_pins_the_root_checks_the_token_and_saves_both_privately(
    remote_cli: RemoteCli, tmp_path: Path
) -> None:
    result = _login(remote_cli, tmp_path)
    assert result.exit_code == 0, result.stderr
    directory = remote_cli.config_home / "certfleet"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("remote.json", "ca.pem"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    saved = json.loads((directory / "remote.json").read_text())
    assert saved == {"url": remote_cli.server.url, "token": remote_cli.server.token}
    assert (directory / "ca.pem").read_text().startswith(remote_cli.server.root.read_text())

    status = remote_cli.plain("status", "--format", "json")
    assert status.exit_code == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["mode"] == "remote"
    assert shown["server"] == remote_cli.server.url
    assert shown["scope"] == "admin"
    assert shown["name"].startswith("token:")
    assert shown["configured_by"].startswith("certfleet login")

    out = remote_cli.plain("logout")
    assert out.exit_code == 0
    assert not (directory / "remote.json").exists()
    assert json.loads(remote_cli.plain("status", "--format", "json").stdout)["mode"] == "local"


def test_a_root_that_does_not_match_the_pin_is_refused_and_nothing_is_saved(
    remote_cli: RemoteCli, tmp_path: Path
) -> None:
    result = _login(remote_cli, tmp_path, pin=WRONG_PIN)
    assert result.exit_code == 2
    assert "not the pinned one" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (remote_cli.config_home / "certfleet" / "remote.json").exists()


def test_a_token_the_server_refuses_is_not_saved(remote_cli: RemoteCli, tmp_path: Path) -> None:
    result = _login(remote_cli, tmp_path, token="cf_000000000000_notasecret")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: invalid or revoked API token"
    assert not (remote_cli.config_home / "certfleet" / "remote.json").exists()


def test_the_environment_names_the_server_for_ci_jobs(remote_cli: RemoteCli) -> None:
    shown = json.loads(remote_cli("status", "--format", "json").stdout)
    assert shown["configured_by"] == "CERTFLEET_SERVER, CERTFLEET_TOKEN, CERTFLEET_CA_FILE"
    assert shown["scope"] == "admin"


def test_a_server_without_a_token_is_one_line_and_exit_2(
    remote_cli: RemoteCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTFLEET_SERVER", remote_cli.server.url)
    result = remote_cli.plain("status")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: CERTFLEET_SERVER is {remote_cli.server.url} but no token is set")


def test_commands_beside_the_data_refuse_when_a_server_is_configured(
    remote_cli: RemoteCli, tmp_path: Path
) -> None:
    commands = {
        "init": ["init", "--data-dir", str(tmp_path / "d")],
        "serve": ["serve", "--data-dir", str(tmp_path / "d")],
        "db": ["db", "upgrade", "--data-dir", str(tmp_path / "d")],
        "agent run": ["agent", "run", "--config", str(tmp_path / "a.yaml"), "--once"],
    }
    for name, argv in commands.items():
        result = remote_cli(*argv)
        assert result.exit_code == 2, argv
        assert result.stderr.strip() == (
            f"error: certfleet {name} runs beside the data directory; a remote server is "
            f"configured ({remote_cli.server.url}): unset CERTFLEET_SERVER or run certfleet logout"
        ), argv
    assert not (tmp_path / "d").exists()


def test_an_unreachable_server_is_one_line_and_exit_1(
    remote_cli: RemoteCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTFLEET_SERVER", "https://127.0.0.1:1")
    monkeypatch.setenv("CERTFLEET_TOKEN", remote_cli.server.token)
    monkeypatch.setenv("CERTFLEET_CA_FILE", str(remote_cli.server.root))
    result = remote_cli.plain("inventory", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach https://127.0.0.1:1/")
    assert len(result.stderr.splitlines()) == 1


def test_a_ca_file_of_another_root_is_refused_before_the_token_is_sent(
    remote_cli: RemoteCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, foreign = self_signed(["impostor-root.example.test"])
    (tmp_path / "foreign.pem").write_bytes(foreign)
    monkeypatch.setenv("CERTFLEET_SERVER", remote_cli.server.url)
    monkeypatch.setenv("CERTFLEET_TOKEN", remote_cli.server.token)
    monkeypatch.setenv("CERTFLEET_CA_FILE", str(tmp_path / "foreign.pem"))
    result = remote_cli.plain("inventory", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the server's root CA is not the pinned one")
    assert len(result.stderr.splitlines()) == 1


def test_local_mode_imports_no_http_client(tmp_path: Path) -> None:
    # The remote check is a file read and the environment: httpx (and the agent's TLS code)
    # load only when a command really goes to a server.
    code, output, loaded = run_fresh("status", "--format", "json", "--data-dir", str(tmp_path / "d"))
    assert code == 0, output
    assert json.loads(output)["mode"] == "local"
    assert "httpx" not in packages(loaded) and "certfleet.agent" not in loaded


def test_the_token_can_come_from_standard_input(
    remote_cli: RemoteCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(remote_cli.server.token + "\n"))
    server = remote_cli.server
    result = remote_cli.plain(
        "login", server.url, "--ca-fingerprint", server.root_fingerprint, "--token-file", "-"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"Logged in to {server.url} as token:")
    two = "cf_a_b\ncf_c_d\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(two))
    refused = remote_cli.plain(
        "login", server.url, "--ca-fingerprint", server.root_fingerprint, "--token-file", "-"
    )
    assert refused.exit_code == 2
    assert refused.stderr == "error: the token file must hold one API token (cf_...) and nothing else\n"

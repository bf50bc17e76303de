"""A real ``certfleet serve`` on loopback for the remote CLI's tests, and the CLI in remote
mode against it. ``tests/cli/conftest.py`` exposes the fixtures; a test module elsewhere
(tests/integration) imports them from here.

- ``remote_server`` (session): the server, its root's PEM file, and an admin token.
- ``remote_cli`` (per test): ``certfleet`` run in-process as a client of that server, with its
  own empty config directory (so no saved login of the machine leaks in) and the server named
  by CERTFLEET_SERVER / CERTFLEET_TOKEN / CERTFLEET_CA_FILE. ``remote_cli.local(...)`` runs
  the same command beside the server's data directory (local mode), for comparing outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from certfleet.cli.main import main as cli_main
from tests.agent.peers import CertfleetServer
from tests.conftest import CliResult
from tests.integration.one_worker import one_worker

__all__ = ["RemoteCli", "RemoteServerFixture", "remote_cli", "remote_server"]

_ENVIRONMENT = ("CERTFLEET_HOME", "CERTFLEET_DB", "CERTFLEET_SERVER", "CERTFLEET_TOKEN", "CERTFLEET_CA_FILE")


@dataclass(frozen=True)
class RemoteServerFixture:
    url: str  # https://127.0.0.1:PORT
    root: Path  # the server's root CA, PEM
    token: str  # an admin API token
    root_fingerprint: str  # SHA-256 hex of the root, as --ca-fingerprint takes it
    data_dir: Path  # the server's data directory (SQLite inside), for local-mode comparisons
    process: CertfleetServer


@pytest.fixture(scope="session")
def remote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServerFixture]:
    """``certfleet serve --init`` (one worker) on loopback ports, for the whole session."""
    base = tmp_path_factory.mktemp("remote-server")
    data_dir = one_worker(base / "data")
    # No renewals or campaign rounds of the server's own: the suites compare each remote
    # command with its local twin run just after it, and a certificate a test marked
    # renew-now, renewed by the scheduler in between, made the two differ by one.
    with (data_dir / "config.toml").open("a") as config:
        config.write("[lifecycle]\nscheduler = false\n")
    server = CertfleetServer(data_dir)
    server.start()
    try:
        root = base / "root.pem"
        root.write_bytes(
            httpx.get(f"http://127.0.0.1:{server.http_port}/ca/root.pem", trust_env=False).content
        )
        yield RemoteServerFixture(
            server.https, root, server.admin_token, server.root_fingerprint(), server.data_dir, server
        )
    finally:
        server.stop()


class RemoteCli:
    """``certfleet`` in-process; remote mode through the environment unless ``local``."""

    def __init__(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        server: RemoteServerFixture,
        config_home: Path,
    ) -> None:
        self._capsys = capsys
        self._monkeypatch = monkeypatch
        self.server = server
        self.config_home = config_home
        self.token = server.token
        monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
        for name in _ENVIRONMENT:
            monkeypatch.delenv(name, raising=False)

    def _run(self, args: list[str], env: dict[str, str]) -> CliResult:
        with self._monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            self._capsys.readouterr()
            code = cli_main(args)
            out, err = self._capsys.readouterr()
        return CliResult(code, out, err)

    def __call__(self, *args: str, token: str | None = None) -> CliResult:
        """A command sent to the server (with the admin token, or ``token``)."""
        env = {
            "CERTFLEET_SERVER": self.server.url,
            "CERTFLEET_TOKEN": token or self.token,
            "CERTFLEET_CA_FILE": str(self.server.root),
        }
        return self._run(list(args), env)

    def plain(self, *args: str) -> CliResult:
        """A command with nothing in the environment (the saved login, if any, applies)."""
        return self._run(list(args), {})

    def local(self, *args: str) -> CliResult:
        """The same command in local mode, beside the server's data directory."""
        return self._run([*args, "--data-dir", str(self.server.data_dir)], {})


@pytest.fixture
def remote_cli(
    remote_server: RemoteServerFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> RemoteCli:
    config_home = tmp_path / "config"
    config_home.mkdir()
    return RemoteCli(capsys, monkeypatch, remote_server, config_home)

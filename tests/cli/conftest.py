"""CLI fixtures: a data directory with a CA (per test, or shared by a module's tests that
change nothing another test looks at), a CLI whose clock the test moves, and a real server
with the CLI as its remote client (tests.cli.remote)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from certfleet.app import open_platform
from certfleet.cli.main import main as cli_main
from tests.cli.remote import remote_cli, remote_server  # a real `certfleet serve`, shared
from tests.conftest import Cli, FakeClock
from tests.services.snapshot import private_database

__all__ = ["remote_cli", "remote_server"]


@pytest.fixture
def initialized(cli: Cli) -> Cli:
    """``certfleet init`` done: an EC P-256 root and issuing CA."""
    result = cli("init", "--ca-name", "Example")
    assert result.exit_code == 0, result.stderr
    return cli


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_ca(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """One initialised data directory and database per module and backend."""
    data_dir = tmp_path_factory.mktemp("module-ca") / "data"
    pg_url = request.getfixturevalue("pg_database_url") if request.param == "postgresql" else None
    with private_database(request.param, data_dir, pg_url) as url:
        assert cli_main(["init", "--ca-name", "Example", "--data-dir", str(data_dir), "--db", url]) == 0
        yield data_dir, url


@pytest.fixture
def ca_cli(module_ca: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI over the module's shared data directory: for tests whose effects (new
    certificates, tokens) no other test of the module depends on."""
    return Cli(capsys, *module_ca)


@pytest.fixture
def clocked(cli: Cli, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The in-process CLI running on the test's FakeClock (issuing, listing, expiring)."""
    monkeypatch.setattr("certfleet.cli._common.open_platform", functools.partial(open_platform, clock=clock))
    monkeypatch.setattr("certfleet.cli._common.system_clock", lambda: clock)  # commands that only read
    result = cli("init", "--ca-name", "Example")
    assert result.exit_code == 0, result.stderr
    return cli

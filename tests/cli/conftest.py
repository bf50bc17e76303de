"""CLI fixtures: a data directory with a CA, and a CLI whose clock the test moves."""

from __future__ import annotations

import functools

import pytest

from certfleet.app import open_platform
from tests.conftest import Cli, FakeClock


@pytest.fixture
def initialized(cli: Cli) -> Cli:
    """``certfleet init`` done: an EC P-256 root and issuing CA."""
    result = cli("init", "--ca-name", "Example")
    assert result.exit_code == 0, result.stderr
    return cli


@pytest.fixture
def clocked(cli: Cli, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The in-process CLI running on the test's FakeClock (issuing, listing, expiring)."""
    monkeypatch.setattr("certfleet.cli._common.open_platform", functools.partial(open_platform, clock=clock))
    result = cli("init", "--ca-name", "Example")
    assert result.exit_code == 0, result.stderr
    return cli

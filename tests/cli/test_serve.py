"""``certfleet serve`` refusals that happen before any listener starts (in-process)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.ports import free_port


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_without_a_ca_refuses(cli: Cli) -> None:
    result = cli("serve", "--https", f"127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{free_port()}")

    assert result.exit_code == 2
    # SQLite: no database file yet; PostgreSQL: the database exists but the data dir has no key.
    assert "run 'certfleet init' first" in result.stderr or "ca-passphrase is missing" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_port_in_use_fails_before_anything_is_created(cli: Cli, busy_port: int, data_dir: Path) -> None:
    result = cli("serve", "--init", "--https", f"127.0.0.1:{busy_port}", "--http", f"127.0.0.1:{free_port()}")

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: cannot start server: cannot listen on 127.0.0.1:{busy_port}: Address already in use\n"
    )
    assert list(data_dir.iterdir()) == []  # no CA, no database file, no token minted
    assert result.stdout == ""


def test_a_malformed_listen_address_is_one_line(cli: Cli) -> None:
    result = cli("serve", "--https", "localhost")

    assert result.exit_code == 2
    assert result.stderr == "error: bad listen address 'localhost': expected HOST:PORT\n"

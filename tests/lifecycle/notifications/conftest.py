from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from certfleet.lifecycle.notifications import ChannelContext
from certfleet.x509 import KeyType
from tests.conftest import FakeClock, make_platform
from tests.lifecycle.notifications.receivers import HttpReceiver, server_tls


@pytest.fixture(scope="module")
def smtp_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ssl.SSLContext, Path]]:
    """A TLS context for test SMTP servers, its certificate issued by a throwaway certfleet
    CA (on SQLite: the channel tests need no database of their own), and that CA's root."""
    base = tmp_path_factory.mktemp("smtp-tls")
    data = base / "data"
    data.mkdir(mode=0o700)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # real TLS clients check validity
    platform = make_platform(data, f"sqlite:///{data / 'certfleet.db'}", FakeClock(now))
    try:
        platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
        yield server_tls(platform, base / "tls")
    finally:
        platform.close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    yield server
    server.close()


@pytest.fixture
def context() -> Iterator[ChannelContext]:
    with httpx.Client(trust_env=False) as client:
        yield ChannelContext(client, timeout_seconds=5.0)

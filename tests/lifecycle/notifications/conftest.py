from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from certfleet.lifecycle.notifications import ChannelContext
from tests.lifecycle.notifications.receivers import HttpReceiver


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    yield server
    server.close()


@pytest.fixture
def context() -> Iterator[ChannelContext]:
    with httpx.Client(trust_env=False) as client:
        yield ChannelContext(client, timeout_seconds=5.0)

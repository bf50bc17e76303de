"""The test suite's port helper: ports outside the kernel's ephemeral range, never one in use."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.ports import BLOCK, free_port, free_ports


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_ports_are_distinct_and_below_the_ephemeral_range() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    low, _ = _ephemeral_range()
    assert all(1024 < port < low for port in ports)


def test_a_port_something_listens_on_is_never_handed_out() -> None:
    first = free_port()
    with socket.create_server(("127.0.0.1", first)):
        # The counter comes round to ``first`` again within one block; it must be skipped.
        handed = {free_port() for _ in range(BLOCK)}
    assert first not in handed


def test_a_free_port_binds() -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)) as server:
        assert server.getsockname()[1] == port

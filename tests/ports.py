"""Loopback ports for servers a test starts, that no other test or client can take meanwhile.

A port from ``bind(0)`` comes from the kernel's ephemeral range (32768-60999 here): once the
probe closes it, any outgoing connection on the machine (a client in the other xdist worker,
certbot, scepclient, httpx) may get it as its source port, or the other worker's ``bind(0)``
the same number, before the server the test starts binds it. CI once failed so: "cannot listen
on 127.0.0.1:39749: Address already in use". So ports are handed out here from below the
ephemeral range, where the kernel never picks a port by itself, each xdist worker from its own
block, in turn; a port something is bound to (or still in TIME_WAIT on) is skipped.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading

# Below the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range starts at 32768) and above
# the well-known services a test machine runs (PostgreSQL 5432, pebble 14000/15000).
_FIRST = 20000
BLOCK = 1500  # ports per xdist worker: eight workers fit below 32768
_lock = threading.Lock()


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw0", "gw1", ...; unset without xdist
    digits = worker.removeprefix("gw")
    return int(digits) % 8 if digits.isdigit() else 0


_next = itertools.count()


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        # No SO_REUSEADDR: a port with connections still in TIME_WAIT counts as taken too.
        with socket.socket(family, kind) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct loopback ports nothing is bound to now, from this worker's block."""
    base = _FIRST + _worker_index() * BLOCK
    chosen: list[int] = []
    with _lock:
        for _ in range(BLOCK):
            port = base + next(_next) % BLOCK
            if port not in chosen and _bindable(host, port):
                chosen.append(port)
                if len(chosen) == count:
                    return chosen
    raise RuntimeError(f"no {count} free ports in {base}-{base + BLOCK - 1} on {host}")


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port nothing is bound to now: for a server the test starts, or as a port where
    connections are refused."""
    return free_ports(1, host)[0]

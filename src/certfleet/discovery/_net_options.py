"""What a network scan may do: its limits, checked when they are set. A module of its own
so that ``certfleet scan net`` can check them before it starts its scanner process without
importing asyncio and the probes (issue 11: the scan CLI's start-up)."""

from __future__ import annotations

from dataclasses import dataclass

from certfleet.discovery.errors import BadTarget

__all__ = ["MAX_CONCURRENCY", "MAX_TIMEOUT_SECONDS", "NetScanOptions"]

MAX_CONCURRENCY = 10_000
MAX_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class NetScanOptions:
    """``concurrency`` bounds connections in flight overall and ``per_host`` to one host
    (a busy server is not a reason to open 500 sockets to it); ``timeout_seconds`` is the
    deadline of each connection, name resolution and the whole handshake included."""

    timeout_seconds: float = 5.0
    concurrency: int = 500
    per_host: int = 32
    http_checks: bool = False
    http_port: int = 80

    def __post_init__(self) -> None:
        if not 0 < self.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise BadTarget(f"timeout must be above 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise BadTarget(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
        if not 1 <= self.per_host <= MAX_CONCURRENCY:
            raise BadTarget(f"per-host concurrency must be between 1 and {MAX_CONCURRENCY}")
        if not 0 < self.http_port < 65536:
            raise BadTarget("HTTP port must be between 1 and 65535")

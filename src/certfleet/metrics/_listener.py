"""The optional listener of ``[metrics] listen``: ``/metrics`` without a token, for a
Prometheus that reaches the server on a loopback or monitoring network only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import start_http_server

from certfleet.metrics._exposition import PlatformMetrics

__all__ = ["metrics_listener"]


@contextmanager
def metrics_listener(holder: PlatformMetrics) -> Iterator[tuple[str, int] | None]:
    """Serve the whole fleet's metrics on ``[metrics] listen`` while the block runs; yields
    the bound address, or None when no listener is configured. Raises OSError if the
    address cannot be bound."""
    if holder.settings.listen is None:
        yield None
        return
    host, port = holder.settings.listen
    server, thread = start_http_server(port, host, registry=holder.registry(None))
    try:
        bound = server.server_address
        yield str(bound[0]), int(bound[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

"""A listing read from where commands go: the server's endpoint when one is configured, else
the local services. Both give the same dicts (the endpoint's JSON is the local ``--format
json``), so one ``emit`` renders either mode and the two cannot drift."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certfleet.cli._common import platform
from certfleet.cli._remote import remote_server

if TYPE_CHECKING:
    from certfleet.app import Platform

__all__ = ["listing_rows"]


def listing_rows(
    path: str,
    local: Callable[[Platform], list[dict[str, Any]]],
    data_dir: Path | None,
    db: str | None,
    *,
    params: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``GET path`` on the configured server, or ``local`` over the opened platform."""
    server = remote_server()
    if server is not None:
        rows: list[dict[str, Any]] = server.request("GET", path, params=params)
        return rows
    with platform(data_dir, db) as p:
        return local(p)

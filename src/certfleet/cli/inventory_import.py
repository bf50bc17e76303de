"""``certfleet inventory import`` (registered on the ``inventory`` group): beside the data
directory one file at a time, or to a server (``POST /api/v1/inventory/import``) in batches
under the endpoint's body bound; either way one line per file, in the order given."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from certfleet.cli._common import DataDirOption, DbOption, platform, stderr
from certfleet.cli._remote import remote_server

__all__ = ["import_files"]

IMPORT_PATH = "/api/v1/inventory/import"
BATCH_BYTES = 4 * 1024 * 1024
"""Raw bytes per request to a server: base64 and JSON make it about 5.4 MiB, under the
endpoint's bound (8 MiB with the default ``max_body_bytes``). A single larger file is sent
alone; a server that refuses its size answers 413, which ends the command (exit 2)."""
BATCH_FILES = 1000  # certfleet.api.inventory_import.MAX_IMPORT_FILES (the CLI imports no FastAPI)

# (name, bytes) sources in, one outcome dict each out (InventoryService.import_sources' order)
_Send = Callable[[list[tuple[str, bytes]]], list[dict[str, Any]]]


def _import(files: Sequence[Path], send: _Send, batch_bytes: int) -> int:
    """Read, send in batches and report each file in order; the number of failures."""
    from rich.console import Console

    console = Console(emoji=False, highlight=False, soft_wrap=True)
    failures = 0
    pending: list[tuple[Path, bytes | None, str | None]] = []  # path, bytes or why unreadable
    size = 0

    def flush() -> None:
        nonlocal failures, size
        outcomes = iter(send([(str(path), data) for path, data, _ in pending if data is not None]))
        for path, data, unreadable in pending:
            if data is None:
                stderr.print(f"{path}: cannot read: {unreadable}", markup=False)
                failures += 1
                continue
            outcome = next(outcomes)
            if outcome["error"]:
                stderr.print(outcome["error"], markup=False)
                failures += 1
            else:
                console.print(
                    f"{path}: {outcome['added']} added, {outcome['duplicates']} already known", markup=False
                )
        pending.clear()
        size = 0

    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            pending.append((path, None, exc.strerror))
            continue
        if pending and (size + len(data) > batch_bytes or len(pending) >= BATCH_FILES):
            flush()
        pending.append((path, data, None))
        size += len(data)
    if pending:
        flush()
    return failures


def import_files(
    files: Annotated[list[Path], typer.Argument(help="PEM bundles or DER files.")],
    team: Annotated[str | None, typer.Option("--team", help="Owning team for new certificates.")] = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Import certificates, de-duplicated by fingerprint; bad files are reported, not fatal."""
    server = remote_server()
    if server is not None:

        def send(sources: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
            if not sources:
                return []
            encoded = [{"name": n, "content_base64": base64.b64encode(d).decode()} for n, d in sources]
            outcomes: list[dict[str, Any]] = server.request(
                "POST", IMPORT_PATH, json={"team": team, "files": encoded}
            )
            return outcomes

        failures = _import(files, send, BATCH_BYTES)
    else:
        with platform(data_dir, db) as p:

            def apply(sources: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
                return [o.to_dict() for o in p.inventory.import_sources(sources, actor="cli", team=team)]

            failures = _import(files, apply, 0)  # one file at a time: only one in memory
    if failures:
        raise typer.Exit(1)

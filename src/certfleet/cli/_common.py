"""What every command shares: the data-dir and database options, opening the platform,
output formats, and turning errors into one line on stderr."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from certfleet.app import Platform, open_platform
from certfleet.config import Settings, load_settings

__all__ = [
    "DataDirOption",
    "DbOption",
    "Format",
    "FormatOption",
    "die",
    "emit",
    "one_line",
    "platform",
    "settings_for",
    "stderr",
]

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
_PIPE_WIDTH = 1000  # table width when stdout is not a terminal (tables never stretch to it)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="CERTFLEET_HOME",
        help="Data directory (default: $XDG_DATA_HOME/certfleet).",
        show_default=False,
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="CERTFLEET_DB",
        help="Database URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in the data dir).",
        show_default=False,
    ),
]


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FormatOption = Annotated[Format, typer.Option("--format", help="Output format.")]


def one_line(message: str) -> str:
    """Errors are one line on stderr, even when a driver's message spans several."""
    return " ".join(message.split())


def die(message: str, code: int = 2) -> NoReturn:
    stderr.print(f"error: {one_line(message)}", markup=False)
    raise typer.Exit(code)


def settings_for(data_dir: Path | None, db: str | None) -> Settings:
    return load_settings(os.environ, data_dir=data_dir, database_url=db)


@contextmanager
def platform(
    data_dir: Path | None, db: str | None, *, create: bool = False, settings: Settings | None = None
) -> Iterator[Platform]:
    """Open the platform; ``settings`` (already resolved, e.g. with command flags applied)
    replaces the resolution from ``data_dir`` and ``db``."""
    settings = settings or settings_for(data_dir, db)
    if not create and settings.is_sqlite and not settings.data_dir.database.exists():
        die(f"no certfleet data in {settings.data_dir.root}: run 'certfleet init' first")
    if not create and not settings.passphrase_file.exists():
        die(
            f"no CA passphrase at {settings.passphrase_file}: run 'certfleet init' first, or point "
            "CERTFLEET_CA_PASSPHRASE_FILE at the CA's passphrase file"
        )
    opened = open_platform(settings, create=create)
    try:
        yield opened
    finally:
        opened.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def emit(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: Format, *, title: str | None = None
) -> None:
    """Print rows as a Rich table, a JSON array (every field) or CSV (the given columns)."""
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(list(rows), indent=2) + "\n")
        return
    if fmt is Format.CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        sys.stdout.write(buffer.getvalue())
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console = Console(soft_wrap=False)
    if not console.is_terminal:
        # Piped into grep or a file, a row must stay one line: Rich would otherwise fit the
        # table into 80 columns and wrap every cell.
        console = Console(soft_wrap=False, width=_PIPE_WIDTH)
    console.print(table)

"""What every command shares: the data-dir and database options, opening the platform,
output formats, and turning errors into one line on stderr (an unexpected one's traceback
going to a log file)."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from certfleet import __version__
from certfleet.app import Platform, open_platform
from certfleet.config import Settings, default_data_dir, load_settings

__all__ = [
    "DataDirOption",
    "DbOption",
    "Format",
    "FormatOption",
    "die",
    "emit",
    "log_internal_error",
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


_LOG_NAME = "cli.log"
_LOG_CAP_BYTES = 1 << 20  # then cli.log becomes cli.log.1 and a new one starts


def log_internal_error(exc: BaseException, data_dir: str | None) -> str:
    """Append ``exc``'s traceback to ``<data dir>/logs/cli.log`` when the data directory
    exists, else to ``cli.log`` in the user's cache directory (``$XDG_CACHE_HOME/certfleet``),
    else to a new file in the temporary directory; always mode 0600. Returns its path.
    (Tracebacks hold no local variables, so no key or passphrase reaches the file.)"""
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    entry = f"{stamp} certfleet {__version__}\n{''.join(traceback.format_exception(exc))}\n"
    for directory in _log_directories(data_dir):
        try:
            return str(_append(directory, entry))
        except OSError:
            continue
    fd, path = tempfile.mkstemp(prefix="certfleet-cli-", suffix=".log")  # 0600
    with os.fdopen(fd, "w") as log:
        log.write(entry)
    return path


def _log_directories(data_dir: str | None) -> Iterator[Path]:
    with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: no home directory
        root = Path(data_dir) if data_dir else default_data_dir(os.environ)
        if root.is_dir():
            yield root / "logs"
    with contextlib.suppress(RuntimeError):
        cache = os.environ.get("XDG_CACHE_HOME")
        yield (Path(cache) if cache else Path.home() / ".cache") / "certfleet"


def _append(directory: Path, entry: str) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / _LOG_NAME
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > _LOG_CAP_BYTES:
            path.replace(path.with_name(_LOG_NAME + ".1"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "a") as log:
        log.write(entry)
    return path


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

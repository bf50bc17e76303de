"""What every command shares: the data-dir and database options, opening the platform,
output formats, and turning errors into one line on stderr (an unexpected one's traceback
going to a log file).

``certfleet --help`` and ``certfleet version`` import this module, so it imports only the
standard library and typer at the top: Rich, the settings and the platform (SQLAlchemy,
cryptography, every service) are imported by the functions that use them."""

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
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand

from certfleet import __version__
from certfleet.cli._lazy import pass_verbatim
from certfleet.cli._table import render_table

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import Console
    from sqlalchemy.orm import Session

    from certfleet.app import Platform
    from certfleet.clock import Clock
    from certfleet.config import Settings

__all__ = [
    "CreateFormatOption",
    "DataDirOption",
    "DbOption",
    "Format",
    "FormatOption",
    "TakesText",
    "converted",
    "die",
    "emit",
    "emit_document",
    "emit_record",
    "log_internal_error",
    "one_line",
    "platform",
    "reading",
    "reading_url",
    "settings_for",
    "stderr",
]


class _Stderr:
    """The Rich console on stderr, made when first used (importing Rich costs about 40 ms,
    a fifth of the start-up budget of ``certfleet version``)."""

    def __init__(self) -> None:
        self._console: Console | None = None

    def print(self, *objects: Any, **options: Any) -> None:
        if self._console is None:
            from rich.console import Console

            self._console = Console(emoji=False, stderr=True, highlight=False, soft_wrap=True)
        self._console.print(*objects, **options)


stderr = _Stderr()
_RICH_ROWS = 1000  # a terminal table of more rows is drawn by render_table: Rich takes ~3 ms a row

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
# What a create command prints: its usual lines (table), or the created record as JSON.
CreateFormatOption = Annotated[
    Format, typer.Option("--format", help="table (the usual lines) or json (what was created).")
]


class TakesText(TyperCommand):
    """A command whose option values reach it as click read them (text, or the default)
    and are converted by the command (:func:`converted`): typer would check each value
    through a pydantic TypeAdapter, and importing pydantic (0.1 s on a quiet machine, more
    under load) is a sixth of the 0.6 s issue 11 gives ``inventory list`` and a large share
    of a scan's start-up. Use with ``@app.command(name, cls=TakesText)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in [*self.params, self.get_help_option(typer.Context(self))]:
            pass_verbatim(param)


_KINDS: dict[Any, str] = {int: "integer", float: "number"}


def converted(value: Any, kind: Any, option: str) -> Any:
    """A :class:`TakesText` command's ``option`` value as ``kind`` (int, float, Path, a
    StrEnum): text is converted, a default (None or already typed) kept, and a bad value is
    a usage error (exit 2) naming the option, as typer's own check would be."""
    if not isinstance(value, str) or kind is str:
        return value
    try:
        return kind(value)
    except ValueError:
        if isinstance(kind, type) and issubclass(kind, StrEnum):
            expected = ", ".join(f"'{member.value}'" for member in kind)
            message = f"{value!r} is not one of {expected}."
        else:
            message = f"{value!r} is not a valid {_KINDS.get(kind, 'value')}."
        raise typer.BadParameter(message, param_hint=f"'{option}'") from None


def emit_document(document: Any) -> None:
    """One JSON document on stdout (a show or create command's ``--format json``)."""
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def emit_record(record: dict[str, Any], fmt: Format) -> None:
    """A show command's one record: ``field: value`` lines, a JSON document, or CSV with a
    header row of its fields."""
    if fmt is Format.JSON:
        emit_document(record)
    elif fmt is Format.CSV:
        emit([record], list(record), fmt)
    else:
        width = max(map(len, record), default=0)
        sys.stdout.write("".join(f"{field:>{width}}: {_cell(value)}\n" for field, value in record.items()))


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
        from certfleet.config import default_data_dir

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


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """:func:`certfleet.config.load_settings`, imported when a command first needs it."""
    from certfleet.config import load_settings as load

    return load(environ, **overrides)


def open_platform(settings: Settings, *, create: bool = False, clock: Clock | None = None) -> Platform:
    """:func:`certfleet.app.open_platform` (which imports every service), imported when a
    command first opens the platform."""
    from certfleet.app import open_platform as open_

    return open_(settings, create=create, clock=clock)


def settings_for(data_dir: Path | None, db: str | None) -> Settings:
    return load_settings(os.environ, data_dir=data_dir, database_url=db)


def system_clock() -> Clock:
    """The clock of a command that reads without opening the platform (tests put theirs)."""
    from certfleet.clock import SystemClock

    return SystemClock()


def require_initialized(settings: Settings) -> None:
    if settings.is_sqlite and not settings.data_dir.database.exists():
        die(f"no certfleet data in {settings.data_dir.root}: run 'certfleet init' first")
    if not settings.passphrase_file.exists():
        die(
            f"no CA passphrase at {settings.passphrase_file}: run 'certfleet init' first, or point "
            "CERTFLEET_CA_PASSPHRASE_FILE at the CA's passphrase file"
        )


@contextmanager
def platform(
    data_dir: Path | None, db: str | None, *, create: bool = False, settings: Settings | None = None
) -> Iterator[Platform]:
    """Open the platform; ``settings`` (already resolved, e.g. with command flags applied)
    replaces the resolution from ``data_dir`` and ``db``."""
    settings = settings or settings_for(data_dir, db)
    if not create:
        require_initialized(settings)
    opened = open_platform(settings, create=create)
    try:
        yield opened
    finally:
        opened.close()


def reading_url(data_dir: Path | None, db: str | None) -> str:
    """The database URL of an initialised data directory, for a command that reads it
    without the ORM (``inventory list``: certfleet.store's ``read_summaries``)."""
    settings = settings_for(data_dir, db)
    require_initialized(settings)
    return settings.database_url


@contextmanager
def reading(data_dir: Path | None, db: str | None) -> Iterator[tuple[Session, Clock]]:
    """A read-only session on an initialised data directory's database, and the clock, for
    a command that only reads: the platform (every service, Alembic, the web stack; about
    1.5 s to import) is not opened, so nothing is migrated either."""
    from sqlalchemy.exc import OperationalError

    from certfleet.errors import ConfigurationError
    from certfleet.store import Database

    settings = settings_for(data_dir, db)
    require_initialized(settings)
    database = Database(settings.database_url, lock_wait_seconds=settings.server.sqlite_lock_wait_seconds)
    try:
        with database.session(read_only=True) as session:
            yield session, system_clock()
    except OperationalError as exc:
        raise ConfigurationError(f"cannot open database: {exc.orig}") from exc
    finally:
        database.dispose()


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
    console = _stdout_console() if len(rows) <= _RICH_ROWS else None
    if console is None:
        # Piped into grep or a file (or too long to be worth Rich's layout): the same box
        # drawing, each row one line however wide, cells printed as they are.
        cells = [[v if type(v) is str else _cell(v) for v in map(row.get, columns)] for row in rows]
        render_table(sys.stdout, columns, cells, title=title)
        return
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def _stdout_console() -> Console | None:
    """A Rich console on stdout when it is a terminal (Rich fits a table to its width),
    else None."""
    if not sys.stdout.isatty():
        return None
    from rich.console import Console

    console = Console(emoji=False, soft_wrap=False)
    return console if console.is_terminal else None

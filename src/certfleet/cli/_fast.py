"""``certfleet``, ``certfleet --help`` and ``certfleet version`` answered without typer.

Importing typer (and the click it vendors) costs about 75 ms here, five times what a bare
interpreter takes to start (issue 11: these commands at most 8x ``python -c pass``). The
three argument lists below have one fixed answer, so they are written here with click's own
layout: the usage line, the description, the options and the command list, wrapped as
click's ``HelpFormatter`` wraps them for the terminal's width. Every other argument list,
global options included (``certfleet --data-dir D version``), goes to typer unchanged.

tests/cli/test_fast_path.py renders each answer with typer as well and requires the same
bytes, exit code and stream at several terminal widths: a changed option, command or help
line that is not mirrored here fails that test."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from textwrap import TextWrapper
    from typing import TextIO

__all__ = ["OPTIONS", "answer", "render_help"]

PROG = "certfleet"
USAGE = "[OPTIONS] COMMAND [ARGS]..."
# The root's options as typer lists them: (names and metavar, help with typer's suffixes).
OPTIONS: tuple[tuple[str, str], ...] = (
    (
        "--data-dir <path>",
        "Data directory (default: $XDG_DATA_HOME/certfleet).  [env var: CERTFLEET_HOME]",
    ),
    (
        "--db <str>",
        "Database URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in the data dir)."
        "  [env var: CERTFLEET_DB]",
    ),
    ("--install-completion", "Install completion for the current shell."),
    (
        "--show-completion",
        "Show completion for the current shell, to copy it or customize the installation.",
    ),
    ("--help", "Show this message and exit."),
)
# Set by the shell completion script that ``--install-completion`` writes: typer answers.
_COMPLETE_VAR = "_CERTFLEET_COMPLETE"


def answer(args: Sequence[str], description: str, commands: Mapping[str, str]) -> int | None:
    """Answer ``args`` and return the exit code, or None when typer must answer them.
    ``commands`` maps each command's name to its one-line help, in listing order."""
    if _COMPLETE_VAR in os.environ:
        return None
    if list(args) == ["version"]:
        from certfleet import __version__

        _echo(__version__, sys.stdout)
        return 0
    if list(args) == ["--help"]:
        _echo(render_help(description, commands.items(), _terminal_columns()), sys.stdout)
        return 0
    if not args:  # click's NoArgsIsHelpError: the help, on stderr, as a usage error
        _echo(render_help(description, commands.items(), _terminal_columns()), sys.stderr)
        return 2
    return None


def _echo(text: str, stream: TextIO | None) -> None:
    # click.echo: the text and a newline, flushed; nothing when there is no stream (pythonw).
    if stream is not None:
        stream.write(f"{text}\n")
        stream.flush()


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, which click's formatter reads, without
    importing shutil (it imports the bz2, lzma and zlib modules)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def render_help(description: str, commands: Iterable[tuple[str, str]], columns: int) -> str:
    """The root's help page as click lays it out for a terminal ``columns`` wide, without
    the final newline (``Command.get_help``)."""
    width = max(min(columns, 80) - 2, 50)  # HelpFormatter(max_width=80)
    out: list[str] = []
    # Command.format_usage: the arguments fit beside the prefix at any width click allows.
    prefix = f"Usage: {PROG} "
    out.append(_wrap(USAGE, width, prefix, " " * len(prefix)) + "\n")
    out.append("\n")
    out.append(_wrap_paragraphs(description, width, "  ") + "\n")
    out.append("\n")
    out.append("Options:\n")
    out.append(_definition_list(OPTIONS, width, indent=2))
    listed = list(commands)
    if listed:
        # TyperGroup.format_commands: one line each, shortened to what is left of the row.
        limit = width - 6 - max(len(name) for name, _ in listed)
        out.append("\n")
        out.append("Commands:\n")
        out.append(_definition_list([(name, _short_help(text, limit)) for name, text in listed], width, 2))
    return "".join(out).rstrip("\n")


def _wrapper(width: int, initial_indent: str, subsequent_indent: str) -> TextWrapper:
    import textwrap

    class _ClickWrapper(textwrap.TextWrapper):
        # click's TextWrapper: a word longer than the line is cut where the line ends.
        def _handle_long_word(
            self, reversed_chunks: list[str], cur_line: list[str], cur_len: int, width: int
        ) -> None:
            space_left = max(width - cur_len, 1)
            last = reversed_chunks[-1]
            cur_line.append(last[:space_left])
            reversed_chunks[-1] = last[space_left:]

    return _ClickWrapper(
        width,
        initial_indent=initial_indent,
        subsequent_indent=subsequent_indent,
        replace_whitespace=False,
    )


def _wrap(text: str, width: int, initial_indent: str = "", subsequent_indent: str = "") -> str:
    """click's ``wrap_text`` of one paragraph."""
    return _wrapper(width, initial_indent, subsequent_indent).fill(text.expandtabs())


def _wrap_paragraphs(text: str, width: int, indent: str = "") -> str:
    """click's ``wrap_text(..., preserve_paragraphs=True)``: paragraphs split at blank lines,
    each indented as its first line is, one starting with a ``\\b`` line kept as written."""
    paragraphs: list[tuple[int, bool, str]] = []
    lines: list[str] = []
    first_indent: int | None = None

    def flush() -> None:
        if lines:
            raw = lines[0].strip() == "\b"
            body = "\n".join(lines[1:]) if raw else " ".join(lines)
            paragraphs.append((first_indent or 0, raw, body))
            lines.clear()

    for line in text.expandtabs().splitlines():
        if not line:
            flush()
            first_indent = None
        else:
            if first_indent is None:
                stripped = line.lstrip()
                first_indent, line = len(line) - len(stripped), stripped
            lines.append(line)
    flush()

    rendered = []
    for extra, raw, body in paragraphs:
        pad = indent + " " * extra
        if raw:
            rendered.append("\n".join(f"{pad}{line}" for line in body.splitlines()))
        else:
            rendered.append(_wrapper(width, pad, pad).fill(body))
    return "\n\n".join(rendered)


def _definition_list(
    rows: Sequence[tuple[str, str]], width: int, indent: int, col_max: int = 30, col_spacing: int = 2
) -> str:
    """click's ``HelpFormatter.write_dl``: names in a column at most ``col_max`` wide, each
    help wrapped beside its name (a longer name puts its help on the next line)."""
    first_col = min(max(len(name) for name, _ in rows), col_max) + col_spacing
    out: list[str] = []
    for name, text in rows:
        out.append(" " * indent + name)
        if not text:
            out.append("\n")
            continue
        if len(name) <= first_col - col_spacing:
            out.append(" " * (first_col - len(name)))
        else:
            out.append("\n" + " " * (first_col + indent))
        wrapped = _wrap_paragraphs(text, max(width - first_col - 2, 10)).splitlines() or [""]
        out.append(f"{wrapped[0]}\n")
        out.extend(f"{'':>{first_col + indent}}{line}\n" for line in wrapped[1:])
    return "".join(out)


def _short_help(text: str, limit: int) -> str:
    """click's ``make_default_short_help``: the first paragraph, cut after its first
    sentence, or at a word boundary with ``...`` to fit in ``limit`` characters."""
    paragraph_end = text.find("\n\n")
    words = (text[:paragraph_end] if paragraph_end != -1 else text).split()
    if not words:
        return ""
    if words[0] == "\b":
        words = words[1:]
    total = 0
    last = len(words) - 1
    for i, word in enumerate(words):
        total += len(word) + (i > 0)
        if total > limit:
            break
        if word[-1] == ".":
            return " ".join(words[: i + 1]).strip()
        if total == limit and i != last:
            break
    else:
        return " ".join(words).strip()
    total += len("...")
    while i > 0:
        total -= len(words[i]) + (i > 0)
        if total <= limit:
            break
        i -= 1
    return (" ".join(words[:i]) + "...").strip()

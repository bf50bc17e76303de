"""The typer application behind ``certfleet``: the root group with its lazy commands and
global options, and the one place that turns what a command raised into an exit code.

``certfleet.cli.main`` imports this module only for the argument lists it does not answer
itself (see :mod:`certfleet.cli._fast`): importing typer costs about 75 ms."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from certfleet.cli._common import DataDirOption, DbOption, log_internal_error, one_line, stderr
from certfleet.cli._lazy import LazyGroup, pass_verbatim
from certfleet.cli.main import COMMANDS, HELP
from certfleet.errors import CertfleetError, database_outage

__all__ = ["app", "run_typer"]

# Help text is plain (rich_markup_mode=None): typer's Rich help formatter alone imports in
# about 0.3 s, twice the whole start-up budget.
_TYPER_SETTINGS: dict[str, Any] = {
    "rich_markup_mode": None,
    "pretty_exceptions_enable": False,
    "add_completion": False,
}


class _Certfleet(LazyGroup):
    lazy = COMMANDS
    settings = _TYPER_SETTINGS

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for param in self.params:  # two strings, put into the environment as they are
            pass_verbatim(param)


app = typer.Typer(
    name="certfleet",
    help=HELP,
    no_args_is_help=True,
    cls=_Certfleet,
    # `certfleet --install-completion` (bash, zsh, fish, PowerShell) on the root only; the
    # completion script calls certfleet back, and each lazy command loads when completed.
    **{**_TYPER_SETTINGS, "add_completion": True},
)


@app.callback()
def _global_options(data_dir: DataDirOption = None, db: DbOption = None) -> None:
    # `certfleet --data-dir D ca list`, as with git -C, kubectl --context or step --context:
    # the values become the environment every command's own --data-dir/--db reads, so the
    # command's option still wins when both are given. run_typer() restores the environment.
    if data_dir is not None:
        os.environ["CERTFLEET_HOME"] = str(data_dir)
    if db is not None:
        os.environ["CERTFLEET_DB"] = db


@functools.cache
def _click_command() -> Callable[..., Any]:
    # Building a command from its type hints costs about 0.1 s; tests run the CLI in-process
    # hundreds of times, so the tree is built once (each subcommand when first named).
    command = typer.main.get_command(app)
    for param in command.params:  # the completion flags, appended after the group was made
        pass_verbatim(param)
    return command


_GLOBAL_ENV = ("CERTFLEET_HOME", "CERTFLEET_DB")


@contextmanager
def _restored_environment() -> Iterator[None]:
    """The global options write the environment for one run only (tests and embedders call
    main() many times in one process)."""
    saved = {name: os.environ.get(name) for name in _GLOBAL_ENV}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _context_for(args: list[str]) -> typer.Context:
    """The context of the deepest command named in ``args``, built without parsing them: the
    parser raises some usage errors (an option missing its value) before any context exists,
    and the usage line needs one."""
    command: Any = _click_command()
    context = typer.Context(command, info_name="certfleet")
    for arg in args:
        sub = getattr(command, "commands", {}).get(arg)
        if sub is not None:
            command = sub
            context = typer.Context(command, info_name=arg, parent=context)
    return context


def _usage_error(exc: typer.TyperException, args: list[str]) -> int:
    """Typer (0.26 on) vendors click: its usage errors (no such option or command, a missing
    argument, a bad value) derive from TyperException and know how to show themselves:
    ``Usage: ...``, ``Try '... --help' for help.``, ``Error: ...``."""
    if getattr(exc, "ctx", False) is None:
        exc.ctx = _context_for(args)  # type: ignore[attr-defined]
    show = getattr(exc, "show", None)
    if callable(show):
        if exc.format_message():  # empty when rich already printed the help (no arguments)
            show()
    else:
        stderr.print(f"Error: {one_line(exc.format_message())}", markup=False)
    return exc.exit_code


def _data_dir_named(argv: list[str]) -> str | None:
    """The --data-dir in effect: the last one given (a command's own comes after the global
    one), else the environment's."""
    named = os.environ.get("CERTFLEET_HOME")
    for index, arg in enumerate(argv):
        if arg == "--data-dir" and index + 1 < len(argv):
            named = argv[index + 1]
        elif arg.startswith("--data-dir="):
            named = arg.partition("=")[2]
    return named


def run_typer(args: list[str]) -> int:
    """Run ``certfleet ARGS`` through typer: a usage error prints the usage and exits 2; a
    CertfleetError or a database out of reach (or locked past the wait) becomes one line on
    stderr and exit 2; anything unexpected one line
    pointing to a log file holding the traceback, and exit 70 (EX_SOFTWARE)."""
    with _restored_environment():
        try:
            result = _click_command()(args=args, prog_name="certfleet", standalone_mode=False)
        except typer.Exit as exc:
            return exc.exit_code
        except typer.Abort:
            stderr.print("aborted", markup=False)
            return 130
        except typer.TyperException as exc:
            return _usage_error(exc, args)
        except CertfleetError as exc:
            stderr.print(f"error: {one_line(exc.detail)}", markup=False)
            return 2
        except KeyboardInterrupt:
            return 130
        except Exception as exc:  # noqa: BLE001 - the outermost handler: one line, the rest logged
            outage = database_outage(exc)
            if outage is not None:  # not a bug, so no traceback logged: as "cannot open database"
                stderr.print(f"error: {outage}", markup=False)
                return 2
            log = log_internal_error(exc, _data_dir_named(args))
            stderr.print(
                f"internal error: {type(exc).__name__}: {one_line(str(exc))} (details in {log})",
                markup=False,
            )
            return 70
    return result if isinstance(result, int) else 0

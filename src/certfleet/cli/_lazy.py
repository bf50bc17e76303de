"""Subcommands named up front and imported on first use, so that ``certfleet inventory list``
imports the inventory command's module and not the ACME server's, and a command's ``--help``
imports that command only.

Typer builds a click command from a function's type hints, so the function, and every type
its options name, must be imported to build it; :class:`LazyGroup` defers that to the moment
the command is looked up. Its listing in ``--help`` comes from the one-line help kept beside
the module's name (:class:`certfleet.cli.main.LazyCommand`; tests check that it matches what
the loaded command says)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer._click import Context, HelpFormatter
from typer._coercion import RuntimeParam
from typer.core import TyperGroup

if TYPE_CHECKING:
    from certfleet.cli.main import LazyCommand

__all__ = ["LazyGroup", "load_command", "pass_verbatim"]


class _Verbatim(RuntimeParam):
    """A value passed on as click parsed it."""

    def _coerce_value(self, value: Any, param: Any, ctx: Context) -> Any:
        return value


def pass_verbatim(param: Any) -> None:
    """Let ``param``'s value through unchecked. Typer checks every value, even an absent
    one, through a pydantic TypeAdapter it builds on first use, and importing pydantic costs
    more than the whole start-up budget of ``certfleet version`` (0.1 s of 0.15 s): the
    options that need no conversion (a --help flag, a string) skip it."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        param._runtime_param = _Verbatim(descriptor.parameter_info, descriptor.annotation)


def _pass_help_verbatim(command: Any) -> None:
    pass_verbatim(command.get_help_option(typer.Context(command)))


def load_command(entry: LazyCommand, name: str, settings: Mapping[str, Any]) -> Any:
    """The click command of ``entry``, built as ``app.add_typer``/``app.command`` would have
    built it under a parent Typer made with ``settings``."""
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    parent = typer.Typer(**settings)
    if isinstance(target, typer.Typer):
        parent.add_typer(target, name=name)
    else:
        parent.command(name)(target)
    command = typer.main.get_group(parent).commands[name]
    _pass_help_verbatim(command)
    return command


class _Commands(MutableMapping[str, Any]):
    """A group's commands: every name is known, a lazy one is built when first read."""

    def __init__(
        self, eager: Mapping[str, Any], lazy: Mapping[str, LazyCommand], settings: Mapping[str, Any]
    ):
        self._lazy = dict(lazy)
        self._settings = settings
        self._loaded: dict[str, Any] = dict(eager)
        self._order = [*self._lazy, *(name for name in eager if name not in self._lazy)]

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            entry = self._lazy[name]  # KeyError: no such command
            self._loaded[name] = load_command(entry, name, self._settings)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._order:
            self._order.append(name)
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._order.remove(name)
        self._loaded.pop(name, None)
        self._lazy.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._order

    def listed_help(self, name: str) -> tuple[bool, Any]:
        """(hidden, command-or-help) for the command list, without loading anything."""
        if name in self._loaded:
            command = self._loaded[name]
            return command.hidden, command
        return False, self._lazy[name].help


class LazyGroup(TyperGroup):
    """A Typer group whose subcommands in ``lazy`` are imported when first looked up.
    Subclass it with ``lazy`` (in listing order) and ``settings`` (the keyword arguments of
    the ``typer.Typer`` the commands would have been added to), and pass it as ``cls``."""

    lazy: ClassVar[Mapping[str, LazyCommand]] = {}
    settings: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self.commands, self.lazy, self.settings)
        _pass_help_verbatim(self)

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        # click's own layout, fed from the kept one-line help for commands not loaded yet.
        assert isinstance(self.commands, _Commands)
        listed: list[tuple[str, Any]] = []
        for name in self.commands:
            hidden, command = self.commands.listed_help(name)
            if not hidden:
                listed.append((name, command))
        if not listed:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in listed)
        rows = []
        for name, command in listed:
            if isinstance(command, str):
                command = typer.core.TyperCommand(name, help=command)
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

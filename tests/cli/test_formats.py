"""Output formats are the same everywhere: every listing and show command takes
``--format table|json|csv``, every command that creates something ``--format`` with json.
Read from the command tree itself, so a new command without them fails here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from certfleet.cli._common import Format
from certfleet.cli.main import _click_command

LISTING_OR_SHOW = {"list", "show", "history", "report", "deliveries", "pending", "status"}
CREATES = {"create", "add", "apply", "issue", "rotate"}
# Documents, not records: `policy show` prints the policy's YAML (or json), `ca root` its PEM.
DOCUMENTS = {("policy", "show")}


def _leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)
    if not subcommands or getattr(command, "invoke_without_command", False):
        yield path, command
    for name in list(subcommands or ()):
        yield from _leaves(subcommands[name], (*path, name))


COMMANDS = dict(_leaves(_click_command()))


def _format_of(command: Any) -> Any:
    for param in command.params:
        if "--format" in getattr(param, "opts", ()):
            return param.type_descriptor.annotation
    return None


@pytest.mark.parametrize(
    "path", sorted(p for p in COMMANDS if p and p[-1] in LISTING_OR_SHOW and p not in DOCUMENTS), ids=" ".join
)
def test_every_listing_and_show_takes_table_json_and_csv(path: tuple[str, ...]) -> None:
    # A report may offer more (`crypto report --format cyclonedx`), never fewer.
    kind = _format_of(COMMANDS[path])
    offered = {member.value for member in kind} if kind is not None else set()
    assert {f.value for f in Format} <= offered, f"certfleet {' '.join(path)} lacks --format table|json|csv"


@pytest.mark.parametrize("path", sorted(p for p in COMMANDS if p and p[-1] in CREATES), ids=" ".join)
def test_every_create_command_takes_format_json(path: tuple[str, ...]) -> None:
    assert _format_of(COMMANDS[path]) is Format, f"certfleet {' '.join(path)} lacks --format json"

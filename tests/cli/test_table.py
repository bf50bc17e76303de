"""The CLI's table without Rich's layout engine (cli/_table.py) draws what Rich drew when the
output is not a terminal: the same box, title and padding, byte for byte, so scripts that
read `certfleet ... --format table` see no change, only a faster one."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from certfleet.cli._table import render_table

CASES = {
    "inventory-like": (
        "2 certificates",
        ["serial", "status", "sans", "not_after"],
        [["1f", "active", "a.example.test, b.example.test", "2027-01-01T00:00:00Z"], ["0abc", "", "", ""]],
    ),
    "wide-characters": ("names", ["name", "team"], [["日本語.example", "チーム"], ["x", "y"]]),
    "no-rows": ("0 certificates", ["serial", "status"], []),
    "no-title": (None, ["a", "b"], [["1", "2"]]),
}


def rich_piped(title: str | None, columns: list[str], rows: list[list[str]]) -> str:
    """What the CLI printed before: Rich at width 1000 on a stream that is not a terminal."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console = Console(soft_wrap=False, width=1000, file=io.StringIO())
    console.print(table)
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_the_table_is_the_one_rich_drew(case: str) -> None:
    title, columns, rows = CASES[case]
    out = io.StringIO()

    render_table(out, columns, rows, title=title)

    assert out.getvalue() == rich_piped(title, columns, rows)


def test_cells_are_printed_as_they_are() -> None:
    # Rich read "[...]" as markup (a subject like "CN=[bold]x" lost its brackets).
    out = io.StringIO()

    render_table(out, ["subject"], [["CN=[bold]x"], [":smile:"]], title=None)

    assert "│ CN=[bold]x │" in out.getvalue() and "│ :smile:    │" in out.getvalue()

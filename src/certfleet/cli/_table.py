"""The CLI's table drawn without Rich's layout engine, for output that is not a terminal and
for long listings: the same heavy-headed box Rich draws (``rich.box.HEAVY_HEAD``, one space of
padding, the title centred above), each row on one line however wide. Rich measures, wraps
and renders every cell as a styled segment (about 3 ms a row here: 30 s for a 10,000-row
inventory); this writes the rows as they are, and prints cells literally (Rich would read
``[...]`` in a subject as markup)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

__all__ = ["render_table"]


def _width(text: str) -> int:
    if text.isascii():
        return len(text)
    from rich.cells import cell_len  # wide (CJK) characters take two terminal cells

    return cell_len(text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def render_table(
    out: TextIO, columns: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None
) -> None:
    """Write ``rows`` (one string per column) under ``columns`` to ``out``."""
    widths = [_width(c) for c in columns]
    for row in rows:
        for index, cell in enumerate(row):
            cell_width = _width(cell)
            if cell_width > widths[index]:
                widths[index] = cell_width
    total = sum(widths) + 3 * len(widths) + 1
    lines: list[str] = []
    if title is not None:
        left = max(total - _width(title), 0) // 2
        lines.append(_pad(" " * left + title, total))
    lines.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓")
    lines.append("┃ " + " ┃ ".join(_pad(c, w) for c, w in zip(columns, widths, strict=True)) + " ┃")
    lines.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩")
    lines.extend(
        "│ " + " │ ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)) + " │" for row in rows
    )
    lines.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
    out.write("\n".join(lines) + "\n")

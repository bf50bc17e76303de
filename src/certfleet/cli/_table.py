"""The CLI's table drawn without Rich's layout engine, for output that is not a terminal and
for long listings: the same heavy-headed box Rich draws (``rich.box.HEAVY_HEAD``, one space of
padding, the title centred above), each row on one line however wide. Rich measures, wraps
and renders every cell as a styled segment (about 3 ms a row here: 30 s for a 10,000-row
inventory); this writes the rows as they are, and prints cells literally (Rich would read
``[...]`` in a subject as markup)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO

__all__ = ["render_table"]


def _cells(text: str) -> int:
    """Terminal cells ``text`` takes: wide (CJK) characters take two."""
    from rich.cells import cell_len

    return cell_len(text)


def _column(header: str, cells: Sequence[str]) -> tuple[int, Callable[[str], str]]:
    """The width of a column and how to pad one of its cells to it (``str.ljust`` when the
    column is ASCII, the common case, which is the most of the time a long listing takes)."""
    if header.isascii() and all(cell.isascii() for cell in cells):
        width = max(len(header), max(map(len, cells), default=0))
        return width, lambda text: text.ljust(width)
    width = max(_cells(header), max(map(_cells, cells), default=0))
    return width, lambda text: text + " " * (width - _cells(text))


def render_table(
    out: TextIO, columns: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None
) -> None:
    """Write ``rows`` (one string per column) under ``columns`` to ``out``."""
    layout = [_column(header, [row[index] for row in rows]) for index, header in enumerate(columns)]
    widths = [width for width, _ in layout]
    pads = [pad for _, pad in layout]
    total = sum(widths) + 3 * len(widths) + 1
    lines: list[str] = []
    if title is not None:
        title_width = _cells(title) if not title.isascii() else len(title)
        left = max(total - title_width, 0) // 2
        lines.append(" " * left + title + " " * max(total - left - title_width, 0))
    lines.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓")
    lines.append("┃ " + " ┃ ".join(pad(c) for c, pad in zip(columns, pads, strict=True)) + " ┃")
    lines.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩")
    lines.extend("│ " + " │ ".join([pad(c) for c, pad in zip(row, pads, strict=True)]) + " │" for row in rows)
    lines.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
    out.write("\n".join(lines) + "\n")

"""README's promise: no module under ``src/`` exceeds 400 lines. A module that grows past it
has two reasons to change (STYLE.md, habit 10): split it along that seam, behind the same
public names, rather than raise the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

import certfleet

MAX_LINES = 400
SRC = Path(certfleet.__file__).resolve().parent.parent
MODULES = sorted(SRC.rglob("*.py"))


def test_the_walk_finds_the_modules() -> None:
    assert SRC / "certfleet" / "app.py" in MODULES


@pytest.mark.parametrize("module", MODULES, ids=lambda path: str(path.relative_to(SRC)))
def test_no_module_exceeds_400_lines(module: Path) -> None:
    lines = len(module.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, (
        f"src/{module.relative_to(SRC)} has {lines} lines, over the {MAX_LINES} README promises: "
        "split it where it has two reasons to change"
    )

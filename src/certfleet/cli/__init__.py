"""The command-line interface (``certfleet.cli.main:main`` is the entry point; each command
group lives in its own module)."""

from __future__ import annotations

__all__: list[str] = []

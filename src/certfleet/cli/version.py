"""``certfleet version``."""

from __future__ import annotations

import typer

from certfleet import __version__

__all__ = ["version"]


def version() -> None:
    """Print the version."""
    typer.echo(__version__)

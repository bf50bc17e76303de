"""The live progress bar of ``certfleet scan``: drawn on stderr for a person watching, by
whichever process runs the scan (``scan net`` runs its handshakes in a child interpreter,
:mod:`certfleet.cli._scan_child`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from certfleet.discovery.outcomes import EndpointOutcome, FileOutcome

__all__ = ["Progress", "progress_bar", "wants_progress"]

# Rich (about 65 ms to import) only draws the bar: a scan piped into a file or run with
# --quiet never imports it.


class Progress:
    """A live bar on stderr: endpoints done, certificates found, errors."""

    def __init__(self, console: Console, label: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            SpinnerColumn(),
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("certificates {task.fields[certificates]}  errors {task.fields[errors]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task(label, total=None, certificates=0, errors=0)
        self._certificates = 0
        self._errors = 0

    def __enter__(self) -> Progress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def on_start(self, total: int | None) -> None:
        self._progress.update(self._task, total=total)

    def on_target_start(self, target: str) -> None:
        pass

    def on_outcome(self, outcome: EndpointOutcome | FileOutcome) -> None:
        from certfleet.discovery.outcomes import EndpointOutcome  # imported by then

        if isinstance(outcome, EndpointOutcome):
            found = len(outcome.observation.chain) if outcome.observation else 0
        else:
            found = len(outcome.certificates)
        self._certificates += found
        self._errors += 0 if outcome.ok else 1
        self._progress.update(self._task, advance=1, certificates=self._certificates, errors=self._errors)


def wants_progress(quiet: bool) -> bool:
    """Only for a person watching: hidden when stdout is piped or redirected, or asked."""
    return not quiet and sys.stdout.isatty() and sys.stderr.isatty()


def progress_bar(label: str) -> Progress:
    from rich.console import Console

    return Progress(Console(emoji=False, stderr=True), label)

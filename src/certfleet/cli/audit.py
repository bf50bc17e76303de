from __future__ import annotations

import typer
from rich.console import Console

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, emit, platform, stderr

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@app.command("list")
def list_entries(
    fmt: FormatOption = Format.TABLE, data_dir: DataDirOption = None, db: DbOption = None
) -> None:
    """List audit entries, oldest first."""
    with platform(data_dir, db) as p:
        rows = [e.to_dict() for e in p.audit.entries()]
    if fmt is Format.TABLE:
        for row in rows:
            row["hash"] = row["hash"][:16]
    emit(rows, ["seq", "at", "actor", "action", "subject", "details", "hash"], fmt)


@app.command("verify")
def verify(data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """Check the hash chain; exit 1 naming the first bad entry if anything was altered."""
    with platform(data_dir, db) as p:
        verdict = p.audit.verify()
    if not verdict.ok:
        stderr.print(
            f"audit log FAILED verification at entry {verdict.first_bad_seq}: {verdict.reason}", markup=False
        )
        raise typer.Exit(1)
    Console(highlight=False, soft_wrap=True).print(f"audit log OK: {verdict.entries} entries, chain intact")

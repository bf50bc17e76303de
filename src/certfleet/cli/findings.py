"""``certfleet findings list``: what discovery found, still open unless ``--all``."""

from __future__ import annotations

from typing import Annotated

import typer

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, emit, platform
from certfleet.discovery import FindingCode, Severity
from certfleet.discovery.records import FindingQuery, StoredFinding

app = typer.Typer(help="Findings of discovery scans.", no_args_is_help=True)

COLUMNS = ["severity", "code", "location", "sni", "serial", "detail", "last_seen"]
_PAGE = 1000


@app.command("list")
def list_findings(
    severity: Annotated[
        str | None, typer.Option("--severity", help="Only this severity and worse (critical ... info).")
    ] = None,
    code: Annotated[str | None, typer.Option("--code", help="Only this finding code, e.g. expired.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's findings.")] = None,
    include_resolved: Annotated[
        bool, typer.Option("--all", help="Include findings no longer observed.")
    ] = False,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """List findings, the most severe first."""
    base = FindingQuery(
        severity=Severity.parse(severity) if severity else None,
        code=FindingCode.parse(code) if code else None,
        team=team,
        include_resolved=include_resolved,
        limit=_PAGE,
    )
    found: list[StoredFinding] = []
    with platform(data_dir, db) as p:
        query = base
        while True:
            page = p.discovery.findings(query)
            found.extend(page)
            if len(page) < _PAGE:
                break
            query = FindingQuery(**{**base.__dict__, "after_id": page[-1].id})
    found.sort(key=lambda f: (-f.severity.rank, f.code.value, f.location, f.id))
    emit([f.to_dict() for f in found], COLUMNS, fmt, title=f"{len(found)} findings")

"""``certfleet findings list``: what discovery found, still open unless ``--all``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, emit, platform
from certfleet.cli._remote import RemoteServer, remote_server
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
    server = remote_server()
    if server is not None:
        rows = _remote_findings(server, base)
        rows.sort(key=lambda f: (-Severity.parse(f["severity"]).rank, f["code"], f["location"], f["id"]))
        emit(rows, COLUMNS, fmt, title=f"{len(rows)} findings")
        return
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


def _remote_findings(server: RemoteServer, query: FindingQuery) -> list[dict[str, Any]]:
    """Every finding the query selects, by the API's keyset pages (each item is the
    ``to_dict`` of the finding, as local mode prints it)."""
    params = {
        "severity": query.severity and query.severity.value,
        "code": query.code and query.code.value,
        "team": query.team,
        "include_resolved": "true" if query.include_resolved else None,
        "limit": _PAGE,
    }
    return server.pages("/api/v1/findings", params)

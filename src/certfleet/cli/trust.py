"""``certfleet trust report``: the CA consolidation report (issuers in use per team, roots
trusted and how many leaves chain to each, roots never used, issuers policy does not
approve, roots expiring within the horizon and what would break)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, die, emit, platform
from certfleet.cli._remote import remote_server
from certfleet.services.trust_report import DEFAULT_HORIZON_DAYS

app = typer.Typer(help="Trust stores and CA consolidation.", no_args_is_help=True)


def _root_rows(roots: list[dict[str, Any]], *, breaks: bool = False) -> list[dict[str, Any]]:
    rows = []
    for root in roots:
        row = {
            "subject": root["subject"],
            "not_after": root["not_after"],
            "leaves": root["leaves"],
            "hosts": ", ".join(root["hosts"]),
            "stores": ", ".join(sorted({f"{loc['store']}:{loc['path']}" for loc in root["locations"]})),
        }
        if breaks:
            row["would_break"] = ", ".join(root["would_break"]) or "-"
        rows.append(row)
    return rows


def _print(report: dict[str, Any]) -> None:
    emit(report["issuers"], ["team", "issuer", "leaves"], Format.TABLE, title="Issuers in use")
    emit(_root_rows(report["roots"]), ["subject", "leaves", "hosts", "stores", "not_after"], Format.TABLE,
         title="Trusted roots")  # fmt: skip
    emit(_root_rows(report["unused_roots"]), ["subject", "hosts", "stores"], Format.TABLE,
         title="Trusted but never used (candidates to remove)")  # fmt: skip
    emit(report["unapproved_issuers"], ["team", "issuer", "leaves", "reason"], Format.TABLE,
         title="Issuers in use that policy does not approve")  # fmt: skip
    emit(_root_rows(report["expiring_roots"], breaks=True), ["subject", "not_after", "hosts", "would_break"],
         Format.TABLE, title=f"Roots expiring within {report['horizon_days']} days")  # fmt: skip


@app.command("report")
def report(
    horizon: Annotated[
        int, typer.Option("--horizon", help="Flag roots expiring within DAYS.")
    ] = DEFAULT_HORIZON_DAYS,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's leaves and issuers.")] = None,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Which roots the fleet trusts, which it uses, and which can go."""
    if fmt is Format.CSV:
        die("--format csv: the report has several tables: use --format table or json")
    server = remote_server()
    if server is not None:
        document: dict[str, Any] = server.request(
            "GET", "/api/v1/trust/report", params={"horizon_days": horizon, "team": team}
        )
    else:
        with platform(data_dir, db) as p:
            _, policy = p.policy.active()
            document = p.discovery.trust_report(policy, horizon_days=horizon, team=team).to_dict()
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        _print(document)

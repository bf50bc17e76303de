"""``certfleet crypto report``: the cryptographic inventory, weak and quantum-vulnerable first,
as a table, JSON, CSV or a CycloneDX 1.6 CBOM; from the server when one is configured."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from certfleet.cli._common import DataDirOption, DbOption, Format, emit, emit_document, platform
from certfleet.cli._remote import remote_server

__all__ = ["app"]

app = typer.Typer(
    help="The cryptographic inventory: algorithms, quantum exposure, CBOM.", no_args_is_help=True
)

_GROUP_COLUMNS = ["algorithm", "signature_algorithm", "quantum_vulnerable", "weaknesses", "count"]


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    CYCLONEDX = "cyclonedx"


@app.command("report")
def report(
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="table, json, csv, or cyclonedx (a CycloneDX 1.6 CBOM).")
    ] = ReportFormat.TABLE,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's certificates.")] = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Every in-use certificate and key certfleet knows, by algorithm, key size, signature
    algorithm and quantum vulnerability, with owners, locations, expiry and CA chain."""
    from certfleet.services.crypto_report import ROW_COLUMNS, report_rows

    server = remote_server()
    document: dict[str, Any]
    if server is not None:
        wanted = "cyclonedx" if fmt is ReportFormat.CYCLONEDX else "json"
        document = server.request("GET", "/api/v1/crypto/report", params={"format": wanted, "team": team})
    else:
        with platform(data_dir, db) as p:
            found = p.crypto.report(team, with_der=fmt is ReportFormat.CYCLONEDX)
            if fmt is ReportFormat.CYCLONEDX:
                from certfleet.services.crypto_cbom import cbom

                document = cbom(found)
            else:
                document = found.to_dict()
    if fmt in (ReportFormat.JSON, ReportFormat.CYCLONEDX):
        emit_document(document)
        return
    rows = report_rows(document)
    if fmt is ReportFormat.CSV:
        emit(rows, ROW_COLUMNS, Format.CSV)
        return
    summary = document["summary"]
    sys.stdout.write(
        f"{summary['certificates']} certificates ({summary['ca_certificates']} CA certificates besides): "
        f"{summary['quantum_vulnerable']} quantum-vulnerable, {summary['weak']} weak\n"
    )
    groups = [{**g, "quantum_vulnerable": _spelled(g["quantum_vulnerable"])} for g in document["groups"]]
    emit(groups, _GROUP_COLUMNS, Format.TABLE, title="By algorithm")
    emit(rows, ROW_COLUMNS, Format.TABLE, title="Certificates (weak and quantum-vulnerable first)")


def _spelled(vulnerable: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[vulnerable]

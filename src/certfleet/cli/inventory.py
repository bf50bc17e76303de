from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from certfleet.cli import _common
from certfleet.cli._common import (
    DataDirOption,
    DbOption,
    Format,
    FormatOption,
    TakesText,
    converted,
    emit,
    platform,
    reading,
    reading_url,
)
from certfleet.cli._remote import RemoteServer, remote_server
from certfleet.cli.inventory_import import import_files
from certfleet.clock import iso
from certfleet.errors import InvalidInput
from certfleet.inventory import MAX_EXPIRING_DAYS, MAX_PAGE_SIZE, CertificateQuery, Status

app = typer.Typer(help="The certificate inventory.", no_args_is_help=True)

LIST_COLUMNS = ["serial", "status", "source", "team", "subject", "sans", "issuer", "not_after"]


def _status(value: str | None) -> Status | None:
    if value is None:
        return None
    try:
        return Status(value)
    except ValueError:
        raise InvalidInput(
            f"unknown status {value!r}: expected active, revoked, expired or superseded"
        ) from None


@app.command("list", cls=TakesText)
def list_certificates(
    expiring: Annotated[
        int | None, typer.Option("--expiring", help="Only those expiring within DAYS.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="active, revoked, expired, superseded.")
    ] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", help="Issuer DN substring or CA id.")] = None,
    san: Annotated[
        str | None, typer.Option("--san", help="A DNS name or IP address the certificate has.")
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="Owning team.")] = None,
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """List certificates, filtered."""
    # Values as click read them (TakesText): converted here.
    expiring = converted(expiring, int, "--expiring")
    fmt, data_dir = converted(fmt, Format, "--format"), converted(data_dir, Path, "--data-dir")
    if expiring is not None and not 0 <= expiring <= MAX_EXPIRING_DAYS:
        raise InvalidInput(f"--expiring must be between 0 and {MAX_EXPIRING_DAYS} days")
    server = remote_server()
    if server is not None:
        wanted = _status(status)
        params = {"expiring": expiring, "status": wanted and wanted.value, "issuer": issuer, "san": san}
        records = _remote_records(server, {**params, "team": team})
        shown = records if fmt is Format.JSON else [_summary(r) for r in records]
        emit(shown, LIST_COLUMNS, fmt, title=f"{len(shown)} certificates")
        return
    base = CertificateQuery(
        expiring_within=dt.timedelta(days=expiring) if expiring is not None else None,
        status=_status(status),
        issuer=issuer,
        san=san,
        team=team,
        limit=MAX_PAGE_SIZE,
    )
    # A read: no platform to open (see _common.reading). The table and CSV read only the
    # columns they show, without the ORM (store._inventory_read: on SQLite through sqlite3);
    # JSON gives every field of full records. Every page is read by keyset.
    if fmt is not Format.JSON:
        from certfleet.store import read_summaries

        now = _common.system_clock().now()  # tests put their clock there
        rows: list[dict[str, object]] = [
            {
                "serial": r.serial,
                "status": r.effective_status(now).value,
                "source": r.source.value,
                "team": r.team,
                "subject": r.subject,
                "sans": r.sans,
                "issuer": r.issuer,
                "not_after": iso(r.not_after),
            }
            for r in read_summaries(reading_url(data_dir, db), base, now)
        ]
        emit(rows, LIST_COLUMNS, fmt, title=f"{len(rows)} certificates")
        return
    from certfleet.store import SqlCertificateRepository

    rows = []
    with reading(data_dir, db) as (session, clock):
        certificates = SqlCertificateRepository(session)
        now = clock.now()
        query = base
        while True:
            page = certificates.query(query, now)
            rows.extend(r.to_dict(now) for r in page)
            if len(page) < MAX_PAGE_SIZE:
                break
            query = CertificateQuery(**{**base.__dict__, "after_id": page[-1].id})
    emit(rows, LIST_COLUMNS, fmt, title=f"{len(rows)} certificates")


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    """A listing's row of a certificate's JSON form (what the table and CSV show)."""
    return {column: record[column] for column in LIST_COLUMNS}


def _remote_records(server: RemoteServer, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every certificate the filters select, page by page (the API's keyset cursor)."""
    return server.pages("/api/v1/certificates", {**params, "limit": MAX_PAGE_SIZE})


@app.command("show")
def show(
    key: Annotated[str, typer.Argument(help="Serial (hex) or SHA-256 fingerprint.")],
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Show one certificate."""
    server = remote_server()
    if server is not None:
        data = server.request("GET", f"/api/v1/certificates/{quote(key.strip(), safe='')}")
    else:
        with platform(data_dir, db) as p:
            record = p.inventory.find(key)
            data = record.to_dict(p.clock.now())
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if fmt is Format.CSV:
        emit([data], list(data), fmt)
        return
    from rich.console import Console

    console = Console(emoji=False, highlight=False, soft_wrap=True)
    for field, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else ("" if value is None else value)
        console.print(f"{field:>20}: {shown}", markup=False)


app.command("import")(import_files)  # cli/inventory_import.py: local and remote

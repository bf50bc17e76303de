from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, emit, platform, stderr
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


@app.command("list")
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
    if expiring is not None and not 0 <= expiring <= MAX_EXPIRING_DAYS:
        raise InvalidInput(f"--expiring must be between 0 and {MAX_EXPIRING_DAYS} days")
    base = CertificateQuery(
        expiring_within=dt.timedelta(days=expiring) if expiring is not None else None,
        status=_status(status),
        issuer=issuer,
        san=san,
        team=team,
        limit=MAX_PAGE_SIZE,
    )
    rows: list[dict[str, object]] = []
    with platform(data_dir, db) as p:
        now = p.clock.now()
        query = base
        while True:  # walk every page by keyset so memory stays bounded per page
            page = p.inventory.query(query)
            rows.extend(r.to_dict(now) for r in page)
            if len(page) < MAX_PAGE_SIZE:
                break
            query = CertificateQuery(**{**base.__dict__, "after_id": page[-1].id})
    emit(rows, LIST_COLUMNS, fmt, title=f"{len(rows)} certificates")


@app.command("show")
def show(
    key: Annotated[str, typer.Argument(help="Serial (hex) or SHA-256 fingerprint.")],
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Show one certificate."""
    with platform(data_dir, db) as p:
        record = p.inventory.find(key)
        data = record.to_dict(p.clock.now())
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    console = Console(highlight=False, soft_wrap=True)
    for field, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else ("" if value is None else value)
        console.print(f"{field:>20}: {shown}", markup=False)


@app.command("import")
def import_files(
    files: Annotated[list[Path], typer.Argument(help="PEM bundles or DER files.")],
    team: Annotated[str | None, typer.Option("--team", help="Owning team for new certificates.")] = None,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Import certificates, de-duplicated by fingerprint; bad files are reported, not fatal."""
    failures = 0
    console = Console(highlight=False, soft_wrap=True)
    with platform(data_dir, db) as p:
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as exc:
                stderr.print(f"{path}: cannot read: {exc.strerror}", markup=False)
                failures += 1
                continue
            outcome = p.inventory.import_bytes(data, str(path), actor="cli", team=team)
            if outcome.error:
                stderr.print(outcome.error, markup=False)
                failures += 1
            else:
                console.print(
                    f"{path}: {outcome.added} added, {outcome.duplicates} already known", markup=False
                )
    if failures:
        raise typer.Exit(1)

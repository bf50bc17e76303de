"""``certfleet policy``: apply, show, report on, and dry-run the policy; beside the data or,
with a server configured (``certfleet login``), over ``/api/v1/policies``: each command renders
the same dicts in both modes, so their output is the same."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from certfleet.cli._common import (
    CreateFormatOption,
    DataDirOption,
    DbOption,
    Format,
    FormatOption,
    emit,
    emit_document,
    platform,
)
from certfleet.cli._listing import listing_rows
from certfleet.cli._remote import remote_server
from certfleet.errors import InvalidInput
from certfleet.services.compliance import ComplianceReport, compliance_report, report_json

app = typer.Typer(help="Policies as code: rules every certificate must meet.", no_args_is_help=True)

REPORT_COLUMNS = [
    "serial",
    "team",
    "sans",
    "issuer",
    "not_after",
    "rule",
    "check",
    "severity",
    "enforce",
    "reason",
]
_TABLE_COLUMNS = ["serial", "team", "sans", "rule", "severity", "enforce", "reason"]

ExitCodeOption = Annotated[
    bool, typer.Option("--exit-code", help="Exit 1 when any certificate violates a rule (for CI).")
]


class ShowFormat(StrEnum):
    YAML = "yaml"
    JSON = "json"


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}") from exc


@app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="Policy document (YAML).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check FILE and say what applying would do; store nothing.")
    ] = False,
    fmt: CreateFormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Store FILE as the next policy version (audited) and enforce it from now on."""
    document = _read(file)
    server = remote_server()
    if server is not None:
        body = {"document": _text(document), "source": str(file), "dry_run": dry_run}
        outcome: dict[str, Any] = server.request("POST", "/api/v1/policies", json=body)
    else:
        with platform(data_dir, db) as p:
            outcome = p.policy.apply(document, source=str(file), actor="cli", dry_run=dry_run).to_dict()
    if fmt is Format.JSON:
        emit_document(outcome)
        return
    console = Console(emoji=False, highlight=False)
    if not outcome["changed"]:
        console.print(f"Unchanged: version {outcome['version']} already has this content", markup=False)
    elif outcome["dry_run"]:
        console.print(
            f"Would apply policy version {outcome['version']} ({outcome['rules']} rules); nothing stored",
            markup=False,
        )
    else:
        console.print(f"Applied policy version {outcome['version']} ({outcome['rules']} rules)", markup=False)


def _text(document: bytes) -> str:
    # What the service stores for bytes, so both modes apply the same text.
    return document.decode("utf-8", errors="replace")


@app.command("show")
def show(
    version: Annotated[
        int | None, typer.Option("--version", help="A past version (default: in force).")
    ] = None,
    fmt: Annotated[
        ShowFormat, typer.Option("--format", help="yaml (the document) or json.")
    ] = ShowFormat.YAML,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Print the policy in force (or --version N)."""
    server = remote_server()
    if server is not None:
        path = f"/api/v1/policies/{version}" if version is not None else "/api/v1/policies/current"
        stored: dict[str, Any] = server.request("GET", path)
    else:
        with platform(data_dir, db) as p:
            found = p.policy.show(version)
        stored = {**found.to_dict(), "document": found.document}
    if fmt is ShowFormat.JSON:
        sys.stdout.write(json.dumps(stored, indent=2) + "\n")
        return
    document: str = stored["document"]
    sys.stdout.write(
        f"# policy version {stored['version']}, applied {stored['created_at']} by {stored['actor']}\n"
    )
    sys.stdout.write(document if document.endswith("\n") else document + "\n")


@app.command("history")
def history(
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """List applied versions, newest first."""
    rows = listing_rows("/api/v1/policies", lambda p: [v.to_dict() for v in p.policy.history()], data_dir, db)
    emit(rows, ["version", "created_at", "actor", "rules", "sha256"], fmt, title="policy versions")


def _write(
    head: dict[str, Any],
    rows: Iterable[dict[str, Any]],
    summary: Callable[[], dict[str, Any]],
    fmt: Format,
) -> None:
    """JSON and CSV stream row by row (flat memory over any inventory); the table gathers the
    violations first, being meant for people reading a terminal. ``summary`` is read after
    the last row."""
    out = sys.stdout
    if fmt is Format.CSV:
        writer = csv.writer(out)
        writer.writerow(REPORT_COLUMNS)
        for row in rows:
            writer.writerow(
                ", ".join(v) if isinstance(v, list) else ("" if v is None else v)
                for v in (row.get(c) for c in REPORT_COLUMNS)
            )
        return
    if fmt is Format.JSON:
        for chunk in report_json(head, rows, summary):
            out.write(chunk)
        return
    collected = list(rows)
    counts = summary()
    title = (
        f"{counts['violating']} of {counts['certificates']} certificates violate the policy "
        f"({counts['violations']} violations)"
    )
    emit(collected, _TABLE_COLUMNS, Format.TABLE, title=title)


def _local(report: ComplianceReport, fmt: Format, exit_code: bool) -> None:
    _write(report.head, report.rows, report.summary, fmt)
    if exit_code and report.summary()["violations"]:
        raise typer.Exit(1)


def _remote(answer: dict[str, Any], fmt: Format, exit_code: bool) -> None:
    head = {k: v for k, v in answer.items() if k not in {"violations", "summary"}}
    summary: dict[str, Any] = answer["summary"]
    _write(head, answer["violations"], lambda: summary, fmt)
    if exit_code and summary["violations"]:
        raise typer.Exit(1)


@app.command("report")
def report(
    fmt: FormatOption = Format.TABLE,
    exit_code: ExitCodeOption = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Compliance of every active certificate with the policy in force."""
    server = remote_server()
    if server is not None:
        _remote(server.request("GET", "/api/v1/policies/report"), fmt, exit_code)
        return
    with platform(data_dir, db) as p:
        _local(compliance_report(p.policy), fmt, exit_code)


@app.command("test")
def test(
    file: Annotated[Path, typer.Argument(help="Policy document (YAML) to try.")],
    fmt: FormatOption = Format.TABLE,
    exit_code: ExitCodeOption = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Dry run: which certificates in the inventory FILE's rules would flag, before applying."""
    document = _read(file)
    server = remote_server()
    if server is not None:
        body = {"document": _text(document), "source": str(file)}
        _remote(server.request("POST", "/api/v1/policies/test", json=body), fmt, exit_code)
        return
    with platform(data_dir, db) as p:
        _local(compliance_report(p.policy, document, source=str(file)), fmt, exit_code)

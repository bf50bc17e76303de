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
from certfleet.policy.presets import PRESET_NAMES
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
    "preset",
    "clause",
]
_TABLE_COLUMNS = ["serial", "team", "sans", "rule", "severity", "enforce", "reason"]

PresetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--preset",
        help=f"A shipped compliance preset ({', '.join(PRESET_NAMES)}); repeat for several.",
    ),
]
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
    file: Annotated[Path | None, typer.Argument(help="Policy document (YAML).")] = None,
    preset: PresetOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check FILE and say what applying would do; store nothing.")
    ] = False,
    fmt: CreateFormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Store FILE as the next policy version (audited) and enforce it from now on. With
    --preset, the preset is layered onto FILE, or without FILE onto the policy in force
    (whose own rules are kept)."""
    presets = list(preset or [])
    if file is None and not presets:
        raise InvalidInput("give a policy FILE, or --preset NAME, or both")
    document = _read(file) if file is not None else None
    source = str(file) if file is not None else "--preset " + ", ".join(presets)
    server = remote_server()
    if server is not None:
        body: dict[str, Any] = {"source": source, "dry_run": dry_run}
        if document is not None:
            body["document"] = _text(document)
        if presets:
            body["presets"] = presets
        outcome: dict[str, Any] = server.request("POST", "/api/v1/policies", json=body)
    else:
        with platform(data_dir, db) as p:
            if presets:
                applied = p.policy.apply_presets(
                    presets, document, source=source, actor="cli", dry_run=dry_run
                )
            else:
                assert document is not None
                applied = p.policy.apply(document, source=source, actor="cli", dry_run=dry_run)
            outcome = applied.to_dict()
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
    collected = sorted(rows, key=lambda r: (r.get("team") or "", r.get("serial") or ""))
    columns = _TABLE_COLUMNS
    if any(r.get("clause") for r in collected):
        # A preset's rows cite their clause: the standard's words, not only the rule's name.
        columns = [c if c != "rule" else "clause" for c in _TABLE_COLUMNS]
    counts = summary()
    title = (
        f"{counts['violating']} of {counts['certificates']} certificates violate the policy "
        f"({counts['violations']} violations)"
    )
    emit(collected, columns, Format.TABLE, title=title)


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
    preset: PresetOption = None,
    fmt: FormatOption = Format.TABLE,
    exit_code: ExitCodeOption = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Compliance of every active certificate with the policy in force, or with the given
    presets alone (each violation citing the clause it breaks), per team."""
    presets = list(preset or [])
    server = remote_server()
    if server is not None:
        params = {"preset": presets} if presets else None
        _remote(server.request("GET", "/api/v1/policies/report", params=params), fmt, exit_code)
        return
    with platform(data_dir, db) as p:
        _local(compliance_report(p.policy, presets=presets), fmt, exit_code)


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

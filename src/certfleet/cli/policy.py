"""``certfleet policy``: apply, show, report on, and dry-run the policy."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from certfleet.cli._common import DataDirOption, DbOption, Format, FormatOption, emit, platform
from certfleet.clock import iso
from certfleet.errors import InvalidInput
from certfleet.policy import Policy
from certfleet.services.compliance import ComplianceTally
from certfleet.services.policy import PolicyService, Verdict

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
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Store FILE as the next policy version (audited) and enforce it from now on."""
    document = _read(file)
    with platform(data_dir, db) as p:
        outcome = p.policy.apply(document, source=str(file), actor="cli")
    version = outcome.version
    console = Console(highlight=False)
    if outcome.changed:
        console.print(f"Applied policy version {version.version} ({version.rule_count} rules)", markup=False)
    else:
        console.print(f"Unchanged: version {version.version} already has this content", markup=False)


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
    with platform(data_dir, db) as p:
        stored = p.policy.get(version) if version is not None else p.policy.current()
    if stored is None:
        raise InvalidInput("no policy has been applied yet: every request is allowed")
    if fmt is ShowFormat.JSON:
        sys.stdout.write(json.dumps({**stored.to_dict(), "document": stored.document}, indent=2) + "\n")
        return
    sys.stdout.write(
        f"# policy version {stored.version}, applied {iso(stored.created_at)} by {stored.actor}\n"
    )
    sys.stdout.write(stored.document if stored.document.endswith("\n") else stored.document + "\n")


@app.command("history")
def history(
    fmt: FormatOption = Format.TABLE,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """List applied versions, newest first."""
    with platform(data_dir, db) as p:
        rows = [v.to_dict() for v in p.policy.history()]
    emit(rows, ["version", "created_at", "actor", "rules", "sha256"], fmt, title="policy versions")


def _rows(
    verdicts: Iterator[Verdict], service: PolicyService, tally: ComplianceTally
) -> Iterator[dict[str, Any]]:
    now = service.now()
    for verdict in verdicts:
        tally.add(verdict)
        yield from verdict.rows(now)


def _write(rows: Iterator[dict[str, Any]], tally: ComplianceTally, fmt: Format, head: dict[str, Any]) -> None:
    """JSON and CSV stream row by row (flat memory over any inventory); the table gathers the
    violations first, being meant for people reading a terminal."""
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
        out.write(json.dumps(head)[:-1] + ', "violations": [')
        for index, row in enumerate(rows):
            out.write(("\n" if index == 0 else ",\n") + json.dumps(row, sort_keys=True))
        out.write('\n], "summary": ' + json.dumps(tally.counts().to_dict(), sort_keys=True) + "}\n")
        return
    collected = list(rows)
    counts = tally.counts()
    title = (
        f"{counts.violating} of {counts.certificates} certificates violate the policy "
        f"({counts.violations} violations)"
    )
    emit(collected, _TABLE_COLUMNS, Format.TABLE, title=title)


def _report(
    service: PolicyService, policy: Policy | None, fmt: Format, head: dict[str, Any], exit_code: bool
) -> None:
    tally = ComplianceTally()
    _write(_rows(service.evaluate_inventory(policy), service, tally), tally, fmt, head)
    if exit_code and tally.counts().violations:
        raise typer.Exit(1)


@app.command("report")
def report(
    fmt: FormatOption = Format.TABLE,
    exit_code: ExitCodeOption = False,
    data_dir: DataDirOption = None,
    db: DbOption = None,
) -> None:
    """Compliance of every active certificate with the policy in force."""
    with platform(data_dir, db) as p:
        version, policy = p.policy.active()
        _report(p.policy, policy, fmt, {"policy_version": version}, exit_code)


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
    with platform(data_dir, db) as p:
        policy = p.policy.parse(document, source=str(file))
        _report(p.policy, policy, fmt, {"policy_version": None, "source": str(file)}, exit_code)

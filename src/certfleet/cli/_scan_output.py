"""What a local scan shows: its report as a table (rich), JSON or CSV, and the exit status
``--fail-on`` asks for. (A remote scan's report is drawn by ``_scan_remote``.)"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import TYPE_CHECKING

import typer

from certfleet.cli._common import Format, emit
from certfleet.discovery import Severity

if TYPE_CHECKING:
    from certfleet.discovery.requests import ScanReport

__all__ = ["OUTCOME_COLUMNS", "finish_scan"]

OUTCOME_COLUMNS = ["target", "sni", "status", "reason", "tls_version", "subject", "not_after", "findings"]


def _rows(report: ScanReport) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for item in report.to_dict()["outcomes"]:
        chain = item.get("chain") or item.get("certificates") or []
        rows.append(
            {
                "target": item["target"],
                "sni": item.get("sni"),
                "status": item["status"],
                "reason": item.get("reason"),
                "tls_version": item.get("tls_version"),
                "subject": chain[0]["subject"] if chain else None,
                "not_after": chain[0]["not_after"] if chain else None,
                "findings": item["findings"],
            }
        )
    return rows


def _print_table(report: ScanReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(emoji=False, soft_wrap=False, highlight=False)
    rows = _rows(report)
    found = Table(title="Certificates found")
    for column in ("target", "sni", "tls_version", "subject", "not_after", "findings"):
        found.add_column(column)
    for row in rows:
        if row["status"] == "ok":
            found.add_row(
                *(
                    ", ".join(v) if isinstance(v, list) else str(v or "")
                    for v in (
                        row["target"],
                        row["sni"],
                        row["tls_version"],
                        row["subject"],
                        row["not_after"],
                        row["findings"],
                    )
                )
            )
    if found.row_count:
        console.print(found)
    failures = Counter((str(r["status"]), str(r["reason"])) for r in rows if r["status"] != "ok")
    if failures:
        table = Table(title="Targets without a result")
        for column in ("status", "reason", "count"):
            table.add_column(column)
        for (status, reason), count in failures.most_common():
            table.add_row(status, reason, str(count))
        console.print(table)
    run = report.run
    by_severity = Counter(f.severity.value for f in report.findings)
    summary = Table(title="Summary", show_header=False)
    summary.add_column("what")
    summary.add_column("count")
    summary.add_row("scan", run.id)
    summary.add_row("targets", str(run.targets_total))
    summary.add_row("succeeded", str(run.succeeded))
    summary.add_row("failed", str(run.failed))
    summary.add_row("certificates", f"{run.certificates_found} ({run.certificates_new} new)")
    for severity in Severity:
        summary.add_row(f"findings {severity.value}", str(by_severity.get(severity.value, 0)))
    if report.stores is not None:
        stores = report.stores
        summary.add_row("trust stores", f"{stores['stores_read']} read, {stores['stores_failed']} unreadable")
        summary.add_row("trusted roots", f"{stores['roots']} ({stores['roots_new']} new)")
    console.print(summary)


def finish_scan(report: ScanReport, fmt: Format, fail_on: Severity | None) -> None:
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    elif fmt is Format.CSV:
        emit(_rows(report), OUTCOME_COLUMNS, fmt)
    else:
        _print_table(report)
    if fail_on is not None and any(f.severity.at_least(fail_on) for f in report.findings):
        raise typer.Exit(1)

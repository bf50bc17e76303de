"""``certfleet scan net|files`` against a remote server: the server runs the scan (from its
network, or over its own disks, as ``POST /api/v1/scans`` does) and the command waits for the
result, then prints its summary and the targets without a result. The per-endpoint rows of a
local scan are not kept by the server; its findings are (``certfleet findings list``)."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from certfleet.cli._common import Format, die, emit
from certfleet.cli._remote import RemoteServer
from certfleet.discovery import Severity

__all__ = ["expand_target_files", "run_remote_scan"]

_FINISHED = ("completed", "failed")
_POLL_FIRST_SECONDS = 0.2
_POLL_MAX_SECONDS = 2.0
_ERROR_COLUMNS = ["target", "sni", "status", "reason"]


def expand_target_files(targets: list[str]) -> list[str]:
    """``@file`` targets read here (one per line, ``#`` comments), so the server gets the
    targets themselves and never a path on the client."""
    expanded: list[str] = []
    for raw in targets:
        if not raw.startswith("@"):
            expanded.append(raw)
            continue
        try:
            text = Path(raw[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            die(f"cannot read target file {raw[1:]}: {exc.strerror or exc}")
        except UnicodeDecodeError:
            die(f"target file {raw[1:]} is not UTF-8 text")
        expanded.extend(e for line in text.splitlines() if (e := line.split("#", 1)[0].strip()))
    return expanded


def _wait(server: RemoteServer, scan_id: str) -> dict[str, Any]:
    """Poll the scan until it finished: the server runs it in the background and announces
    nothing, so asking is the only way (a second apart at most)."""
    pause = _POLL_FIRST_SECONDS
    while True:
        run: dict[str, Any] = server.request("GET", f"/api/v1/scans/{scan_id}")
        if run["status"] in _FINISHED:
            return run
        time.sleep(pause)
        pause = min(pause * 2, _POLL_MAX_SECONDS)


def _findings(server: RemoteServer, scan_id: str) -> list[dict[str, Any]]:
    return server.pages("/api/v1/findings", {"scan": scan_id, "limit": 1000})


def run_remote_scan(
    server: RemoteServer, body: dict[str, Any], fmt: Format, fail_on: Severity | None
) -> None:
    """Start the scan, wait for it, print it; exit 1 when ``fail_on`` matched a finding (as a
    local scan does), 1 too when the scan itself failed on the server."""
    started = server.request("POST", "/api/v1/scans", json=body)
    run = _wait(server, started["id"])
    findings = _findings(server, run["id"])
    if fmt is Format.JSON:
        sys.stdout.write(json.dumps({**run, "findings_list": findings}, indent=2) + "\n")
    elif fmt is Format.CSV:
        emit(run["errors"], _ERROR_COLUMNS, fmt)
    else:
        _print_tables(run, findings)
    if run["status"] == "failed":
        die(f"scan {run['id']} failed on the server: {run.get('error') or 'no reason given'}", 1)
    if fail_on is not None and any(Severity.parse(f["severity"]).at_least(fail_on) for f in findings):
        raise typer.Exit(1)


def _print_tables(run: dict[str, Any], findings: list[dict[str, Any]]) -> None:
    failures = Counter((str(e["status"]), str(e["reason"])) for e in run["errors"])
    if failures:
        rows = [{"status": s, "reason": r, "count": str(n)} for (s, r), n in failures.most_common()]
        emit(rows, ["status", "reason", "count"], Format.TABLE, title="Targets without a result")
    by_severity = Counter(f["severity"] for f in findings)
    summary = [
        {"what": "scan", "count": run["id"]},
        {"what": "targets", "count": str(run["targets_total"])},
        {"what": "succeeded", "count": str(run["succeeded"])},
        {"what": "failed", "count": str(run["failed"])},
        {"what": "certificates", "count": f"{run['certificates_found']} ({run['certificates_new']} new)"},
    ]
    summary += [{"what": f"findings {s.value}", "count": str(by_severity.get(s.value, 0))} for s in Severity]
    emit(summary, ["what", "count"], Format.TABLE, title="Summary")

"""Findings, and scans: start one (admin, as ``POST /api/v1/scans``) and watch it run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from certfleet.access import Scope
from certfleet.discovery import FileScanOptions, NetScanOptions, Severity, parse_ports
from certfleet.discovery.records import FindingQuery
from certfleet.errors import Forbidden, InvalidInput
from certfleet.inventory import decode_cursor, encode_cursor
from certfleet.services.discovery import FileScanRequest, NetScanRequest
from certfleet.web._forms import read_form
from certfleet.web._ports import WebPlatform as Platform
from certfleet.web._render import HtmlRoute, render, url_with
from certfleet.web._sessions import User, check_csrf
from certfleet.web._state import current_user, dashboard

__all__ = ["router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

FINDINGS_PAGE = 100
MAX_TARGETS = 1000


@router.get("/findings")
def findings(request: Request) -> Response:
    user = current_user(request)
    user.principal.require(Scope.READ)
    d = dashboard(request)
    raw_severity = request.query_params.get("severity", "")
    severity = Severity.parse(raw_severity) if raw_severity else None
    cursor = request.query_params.get("cursor")
    found = d.platform.discovery.findings(
        FindingQuery(
            severity=severity,
            team=user.team,
            include_resolved=request.query_params.get("resolved") == "1",
            limit=FINDINGS_PAGE + 1,
            after_id=decode_cursor(cursor) if cursor else None,
        )
    )
    more = len(found) > FINDINGS_PAGE
    found = found[:FINDINGS_PAGE]
    keep = {"severity": raw_severity, "resolved": request.query_params.get("resolved", "")}
    return render(
        request,
        "findings.html",
        {
            "user": user,
            "findings": found,
            "severity": raw_severity,
            "severities": [s.value for s in Severity],
            "resolved": keep["resolved"] == "1",
            "next_href": url_with("/findings", {**keep, "cursor": encode_cursor(found[-1].id)})
            if more
            else None,
            "by_severity": d.queries.findings_by_severity(user.team),
        },
    )


@router.get("/scans")
def scans(request: Request) -> Response:
    user = current_user(request)
    user.principal.require(Scope.READ)
    d = dashboard(request)
    return render(request, "scans.html", {"user": user, "scans": d.queries.scans(user.team, 50)})


def _request(form: dict[str, str], team: str | None) -> NetScanRequest | FileScanRequest:
    targets = tuple(t.strip() for t in form.get("targets", "").replace(",", "\n").splitlines() if t.strip())
    if not targets:
        raise InvalidInput("give at least one target")
    if len(targets) > MAX_TARGETS:
        raise InvalidInput(f"at most {MAX_TARGETS} targets per scan from the dashboard")
    kind = form.get("kind", "net")
    if kind == "files":
        return FileScanRequest(targets, FileScanOptions(), team=team)
    if kind != "net":
        raise InvalidInput("kind must be net or files")
    request = NetScanRequest(
        targets=targets, ports=parse_ports(form.get("ports") or "443"), options=NetScanOptions(), team=team
    )
    request.endpoints()  # a bad target is refused now, not reported by a failed scan later
    return request


def _submit(
    platform: Platform, user: User, form: dict[str, str]
) -> tuple[str, NetScanRequest | FileScanRequest]:
    # Starting a scan makes the server connect to networks or read its own disks: admin only.
    user.principal.require(Scope.ADMIN)
    request = _request(form, user.principal.team)
    targets = request.targets if isinstance(request, NetScanRequest) else request.paths
    kind = "net" if isinstance(request, NetScanRequest) else "files"
    run = platform.discovery.submit(
        kind, targets, request.describe(), actor=user.principal.name, team=request.team
    )
    return run.id, request


@router.post("/scans")
async def start_scan(request: Request) -> Response:
    form = await read_form(request)
    user = await run_in_threadpool(current_user, request)
    check_csrf(user, form.get("csrf_token"))
    platform = dashboard(request).platform
    run_id, scan = await run_in_threadpool(_submit, platform, user, form)
    platform.scans.submit(run_id, scan, user.principal.name)  # the scheduler starts it
    return RedirectResponse(f"/scans/{run_id}", status_code=303)


def _scan(request: Request, scan_id: str) -> tuple[User, dict[str, Any], list[dict[str, Any]]]:
    user = current_user(request)
    user.principal.require(Scope.READ)
    run, errors = dashboard(request).platform.discovery.get_scan(scan_id, user.principal, error_limit=200)
    return user, run.to_dict(), [e.to_dict() for e in errors]


@router.get("/scans/{scan_id}")
def scan(scan_id: str, request: Request) -> Response:
    user, run, errors = _scan(request, scan_id)
    return render(request, "scan.html", {"user": user, "run": run, "errors": errors})


@router.get("/scans/{scan_id}/progress")
def scan_progress(scan_id: str, request: Request) -> Response:
    """What the scan page's script polls (JSON; same visibility as the page)."""
    try:
        _, run, errors = _scan(request, scan_id)
    except Forbidden as exc:
        return JSONResponse({"detail": exc.detail}, status_code=403)
    return JSONResponse({**run, "errors": errors[:20]})

"""``/api/v1/scans``, ``/api/v1/findings`` and certificate locations.

A scan is started with ``POST /api/v1/scans`` (admin scope: it makes the server connect to
networks or read its own disks) and runs in the background; the answer carries its id, and
``GET /api/v1/scans/{id}`` tells its status, counts and errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.discovery import (
    DEFAULT_MAX_FILE_SIZE,
    FileScanOptions,
    FindingCode,
    NetScanOptions,
    Severity,
    parse_ports,
)
from certfleet.discovery.records import FindingQuery
from certfleet.errors import Forbidden, InvalidInput
from certfleet.inventory import MAX_PAGE_SIZE, decode_cursor, encode_cursor
from certfleet.services.discovery import FileScanRequest, NetScanRequest, parse_trust_bundle

router = APIRouter(prefix="/api/v1", tags=["discovery"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]


class ScanIn(BaseModel):
    """A network scan (``kind: net``) of ``targets`` (hosts, addresses, CIDR ranges,
    ``host:port``) or a filesystem scan (``kind: files``) of server-side paths."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["net", "files"] = "net"
    targets: list[str] = Field(default_factory=list, max_length=10_000)
    ports: list[int] = Field(default_factory=lambda: [443], min_length=1, max_length=1000)
    sni: list[str] = Field(default_factory=list, max_length=100)
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    concurrency: int = Field(default=500, ge=1, le=10_000)
    per_host: int = Field(default=32, ge=1, le=10_000)
    http_checks: bool = False
    http_port: int = Field(default=80, ge=1, le=65535)
    expiring_days: int = Field(default=30, ge=0, le=3650)
    trust_pem: str | None = Field(default=None, description="Extra trusted CAs (PEM).")
    team: str | None = Field(default=None, description="Owner of new certificates and findings.")
    max_file_size: int = Field(default=DEFAULT_MAX_FILE_SIZE, ge=1)
    follow_symlinks: bool = False
    passwords: list[str] = Field(
        default_factory=list, max_length=100, description="Tried on PKCS#12 and keystores; never stored."
    )
    trust_stores: bool = Field(
        default=False, description="Files: also read the server's trust stores at their well-known places."
    )


class ScanErrorOut(BaseModel):
    target: str
    sni: str | None
    status: str
    reason: str


class ScanOut(BaseModel):
    id: str
    kind: str
    status: Literal["pending", "running", "completed", "failed"]
    targets: list[str]
    options: dict[str, Any]
    team: str | None
    requested_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    targets_total: int
    succeeded: int
    failed: int
    certificates_found: int
    certificates_new: int
    findings: int
    error: str | None
    errors: list[ScanErrorOut] = Field(default_factory=list)


class FindingOut(BaseModel):
    id: int
    code: str
    severity: Literal["critical", "high", "medium", "low", "info"]
    kind: Literal["endpoint", "file"]
    location: str
    sni: str | None
    serial: str | None
    fingerprint_sha256: str | None
    detail: str
    team: str | None
    first_seen: str
    last_seen: str
    resolved_at: str | None
    last_scan_id: str


class FindingPage(BaseModel):
    items: list[FindingOut]
    next_cursor: str | None


class LocationOut(BaseModel):
    kind: Literal["endpoint", "file"]
    location: str
    sni: str | None
    chain_position: int
    fingerprint_sha256: str
    first_seen: str
    last_seen: str
    gone_at: str | None
    present: bool
    last_scan_id: str | None
    tls_version: str | None
    cipher: str | None


class LocationsOut(BaseModel):
    serial: str
    fingerprint_sha256: str
    source: str
    locations: list[LocationOut]


def _requests(body: ScanIn, team: str | None) -> NetScanRequest | FileScanRequest:
    if not body.targets and not (body.kind == "files" and body.trust_stores):
        raise InvalidInput("give at least one target")
    trust = parse_trust_bundle(body.trust_pem.encode(), "trust_pem") if body.trust_pem else ()
    if body.kind == "files":
        options = FileScanOptions(
            max_file_size=body.max_file_size,
            follow_symlinks=body.follow_symlinks,
            passwords=tuple(p.encode() for p in body.passwords),
        )
        return FileScanRequest(
            tuple(body.targets), options, body.expiring_days, trust, team, trust_stores=body.trust_stores
        )
    request = NetScanRequest(
        targets=tuple(body.targets),
        ports=parse_ports(body.ports),
        snis=tuple(body.sni),
        options=NetScanOptions(
            timeout_seconds=body.timeout_seconds,
            concurrency=body.concurrency,
            per_host=body.per_host,
            http_checks=body.http_checks,
            http_port=body.http_port,
        ),
        expiring_days=body.expiring_days,
        trust=trust,
        team=team,
    )
    request.endpoints()  # a bad target is a 400 now, not a failed scan later
    return request


def _scan_out(platform: Platform, run_id: str, principal: CurrentPrincipal) -> ScanOut:
    run, errors = platform.discovery.get_scan(run_id, principal)
    return ScanOut.model_validate({**run.to_dict(), "errors": [e.to_dict() for e in errors]})


@router.post("/scans", status_code=202, response_model=ScanOut)
async def start_scan(body: ScanIn, principal: CurrentPrincipal, platform: PlatformDep) -> ScanOut:
    """Start a scan in the background; poll ``GET /api/v1/scans/{id}`` for its result."""
    principal.require(Scope.ADMIN)
    team = body.team if body.team is not None else principal.team
    request = _requests(body, team)
    described = request.describe()
    run = await run_in_threadpool(
        platform.discovery.submit, body.kind, body.targets, described, actor=principal.name, team=team
    )
    platform.scans.submit(run.id, request, principal.name)  # the scheduler starts it
    return ScanOut.model_validate(run.to_dict())


@router.get("/scans/{scan_id}", response_model=ScanOut)
async def get_scan(scan_id: str, principal: CurrentPrincipal, platform: PlatformDep) -> ScanOut:
    """A scan's status, counts and the targets it could not examine (first 1,000)."""
    principal.require(Scope.READ)
    return await run_in_threadpool(_scan_out, platform, scan_id, principal)


@router.get("/findings", response_model=FindingPage)
async def list_findings(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    severity: Annotated[Severity | None, Query(description="This severity and worse.")] = None,
    code: FindingCode | None = None,
    team: str | None = None,
    include_resolved: Annotated[bool, Query(description="Also findings no longer observed.")] = False,
    scan: Annotated[str | None, Query(description="Only findings last raised by this scan.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    cursor: str | None = None,
) -> FindingPage:
    """Open findings (keyset pagination: pass ``next_cursor`` back as ``cursor``)."""
    principal.require(Scope.READ)
    if not principal.is_admin:
        if team is not None and team != principal.team:
            raise Forbidden("this token may read only its own team's findings")
        team = principal.team
    query = FindingQuery(
        severity=severity,
        code=code,
        team=team,
        include_resolved=include_resolved,
        limit=limit,
        after_id=decode_cursor(cursor) if cursor else None,
        scan_id=scan,
    )
    found = await run_in_threadpool(platform.discovery.findings, query)
    next_cursor = encode_cursor(found[-1].id) if len(found) == limit else None
    return FindingPage(items=[FindingOut.model_validate(f.to_dict()) for f in found], next_cursor=next_cursor)


@router.get("/certificates/{serial}/locations", response_model=LocationsOut, tags=["certificates"])
async def certificate_locations(
    serial: str, principal: CurrentPrincipal, platform: PlatformDep
) -> LocationsOut:
    """Where a certificate was seen (endpoints with SNI, file paths), gone ones included."""
    principal.require(Scope.READ)
    record = await run_in_threadpool(platform.inventory.find, serial, principal)
    locations = await run_in_threadpool(platform.discovery.locations, record)
    return LocationsOut(
        serial=record.serial,
        fingerprint_sha256=record.fingerprint_sha256,
        source=record.source.value,
        locations=[LocationOut.model_validate(loc.to_dict()) for loc in locations],
    )

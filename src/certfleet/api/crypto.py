"""``GET /api/v1/crypto/report``: the cryptographic inventory as ``certfleet crypto report
--format json`` prints it, or (``?format=cyclonedx``) a CycloneDX 1.6 CBOM. A team token
sees its own team's certificates only; an admin sees every team and certfleet's CAs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from certfleet.access import Principal, Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.errors import Forbidden

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/crypto", tags=["crypto"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]
# The media type CycloneDX registers for its JSON (with the spec version as a parameter).
CYCLONEDX_JSON = "application/vnd.cyclonedx+json; version=1.6"


def visible_team(principal: Principal, team: str | None) -> str | None:
    """The team a report may cover: any (or every) team for an admin, else the token's own."""
    if principal.is_admin:
        return team
    if team is not None and team != principal.team:
        raise Forbidden("this token may read only its own team's cryptographic inventory")
    return principal.team


def _document(platform: Platform, team: str | None, cyclonedx: bool) -> dict[str, Any]:
    report = platform.crypto.report(team, with_der=cyclonedx)
    if cyclonedx:
        from certfleet.services.crypto_cbom import cbom

        return cbom(report)
    return report.to_dict()


@router.get("/report")
async def crypto_report(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    format: Annotated[
        Literal["json", "cyclonedx"], Query(description="json (the report) or cyclonedx (a CBOM).")
    ] = "json",
    team: Annotated[str | None, Query(description="Only this team's certificates.")] = None,
) -> JSONResponse:
    """Every in-use certificate and key certfleet knows, grouped by algorithm, key size,
    signature algorithm and quantum vulnerability, weak ones first."""
    principal.require(Scope.READ)
    scoped = visible_team(principal, team)
    document = await run_in_threadpool(_document, platform, scoped, format == "cyclonedx")
    media_type = CYCLONEDX_JSON if format == "cyclonedx" else "application/json"
    return JSONResponse(document, media_type=media_type)

"""``GET /api/v1/trust/report``: the CA consolidation report (see
:mod:`certfleet.services.trust_report`). A team's token sees its own team's leaves and
issuers; the roots are the fleet's (what each host trusts belongs to no team)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from certfleet.access import Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.errors import Forbidden
from certfleet.services.trust_report import DEFAULT_HORIZON_DAYS

router = APIRouter(prefix="/api/v1/trust", tags=["trust"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]


@router.get("/report")
async def trust_report(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    horizon_days: Annotated[int, Query(ge=0, le=36500, description="Flag roots expiring within DAYS.")] = (
        DEFAULT_HORIZON_DAYS
    ),
    team: Annotated[str | None, Query(description="Only this team's leaves and issuers.")] = None,
) -> dict[str, Any]:
    """Issuers in use per team, trusted roots with the leaves chaining to each, roots never
    used, issuers policy does not approve, and roots expiring within the horizon."""
    principal.require(Scope.READ)
    if not principal.is_admin:
        if team is not None and team != principal.team:
            raise Forbidden("this token may read only its own team's report")
        team = principal.team

    def build() -> dict[str, Any]:
        _, policy = platform.policy.active()
        return platform.discovery.trust_report(policy, horizon_days=horizon_days, team=team).to_dict()

    return await run_in_threadpool(build)

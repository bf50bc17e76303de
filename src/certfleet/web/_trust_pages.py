""" "Trust" on the dashboard: the CA consolidation report (``certfleet trust report``). A
team's session sees its own team's leaves and issuers; the roots are the fleet's."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from certfleet.access import Scope
from certfleet.errors import InvalidInput
from certfleet.services.trust_report import DEFAULT_HORIZON_DAYS
from certfleet.web._render import HtmlRoute, render
from certfleet.web._state import current_user, dashboard

__all__ = ["router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


@router.get("/trust")
async def trust(request: Request) -> Response:
    user = current_user(request)
    user.principal.require(Scope.READ)
    platform = dashboard(request).platform
    raw = request.query_params.get("horizon", str(DEFAULT_HORIZON_DAYS))
    if not raw.isdigit():
        raise InvalidInput("horizon must be a number of days")
    horizon = int(raw)

    def build() -> dict[str, object]:
        _, policy = platform.policy.active()
        return platform.discovery.trust_report(policy, horizon_days=horizon, team=user.team).to_dict()

    report = await run_in_threadpool(build)
    return render(request, "trust.html", {"user": user, "report": report, "horizon": horizon})

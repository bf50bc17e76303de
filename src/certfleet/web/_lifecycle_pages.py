"""Policy compliance, rotation campaigns with their progress, and a certificate's lineage
(what it replaced and what replaced it). They read the lifecycle services; nothing here
changes state."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certfleet.access import Principal, Scope
from certfleet.errors import Forbidden
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.campaigns import ItemState
from certfleet.web._compliance import KEPT_VIOLATIONS
from certfleet.web._ports import WebPlatform
from certfleet.web._render import HtmlRoute, render
from certfleet.web._state import current_user, dashboard

__all__ = ["lineage_of", "router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

MAX_LINEAGE = 50


def lineage_of(
    platform: WebPlatform, record: CertificateRecord, principal: Principal
) -> tuple[list[CertificateRecord], list[CertificateRecord]]:
    """(what it replaced, oldest first; what replaced it, newest last), each certificate
    shown only if the principal may see its team."""
    if record.id is None:
        return [], []
    successors = platform.renewal.lineage(record)[1:]
    before = platform.web_queries.predecessors(record.id, MAX_LINEAGE)
    visible = principal.can_see_team
    return [r for r in before if visible(r.team)], [r for r in successors if visible(r.team)]


@router.get("/policy")
def policy(request: Request) -> Response:
    user = current_user(request)
    user.principal.require(Scope.READ)
    d = dashboard(request)
    current = d.platform.policy.current()
    _, rules = d.platform.policy.active()
    report = d.compliance.get(fresh=request.query_params.get("refresh") == "1")
    return render(
        request,
        "policy.html",
        {
            "user": user,
            "now": d.platform.clock.now(),
            "current": current,
            "rules": rules.rules,
            "report": report,
            "view": report.view(user.team),
            "kept": KEPT_VIOLATIONS,
        },
    )


def _admin_only(request: Request) -> None:
    user = current_user(request)
    user.principal.require(Scope.READ)
    if not user.is_admin:  # as GET /api/v1/lifecycle/campaigns
        raise Forbidden("only an admin token sees fleet-wide renewal and campaign state")


@router.get("/campaigns")
def campaigns(request: Request) -> Response:
    _admin_only(request)
    d = dashboard(request)
    counts, failing = d.platform.renewal.summary()
    return render(
        request,
        "campaigns.html",
        {
            "user": request.state.user,
            "reports": d.platform.rotation.list(),
            "jobs": counts,
            "failing": failing,
            "done_states": (ItemState.REISSUED, ItemState.SKIPPED),
        },
    )


@router.get("/campaigns/{campaign_id}")
def campaign(campaign_id: str, request: Request) -> Response:
    _admin_only(request)
    d = dashboard(request)
    report = d.platform.rotation.report(campaign_id)
    items = d.platform.rotation.items(campaign_id, limit=200)
    return render(
        request,
        "campaign.html",
        {
            "user": request.state.user,
            "report": report,
            "items": items,
            "states": [s.value for s in ItemState],
        },
    )

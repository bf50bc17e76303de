"""SPIFFE on the dashboard: the registration entries the user's team may see, each with its
live SVID (the one inventory record the entry keeps) and its counts; an entry's page lists
the serials of its SVIDs still valid."""

from __future__ import annotations

from typing import Protocol, cast

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certfleet.access import Scope
from certfleet.errors import NotFound
from certfleet.services.spiffe import SpiffeService
from certfleet.web._render import HtmlRoute, render
from certfleet.web._state import current_user, dashboard

__all__ = ["router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


class _SpiffePlatform(Protocol):
    @property
    def spiffe(self) -> SpiffeService: ...


def _service(request: Request) -> SpiffeService:
    return cast(_SpiffePlatform, dashboard(request).platform).spiffe


@router.get("/spiffe")
def entries(request: Request) -> Response:
    user = current_user(request)
    user.principal.require(Scope.READ)
    service = _service(request)
    try:
        trust_domain: str | None = service.entries.trust_domain().name
    except NotFound:
        trust_domain = None
    records = service.entries.records(user.principal) if trust_domain else []
    return render(
        request,
        "spiffe.html",
        {
            "user": user,
            "trust_domain": trust_domain,
            "records": records,
            "now": dashboard(request).platform.clock.now(),
        },
    )


@router.get("/spiffe/entries/{entry_id}")
def entry(entry_id: str, request: Request) -> Response:
    user = current_user(request)
    user.principal.require(Scope.READ)
    service = _service(request)
    record = service.entries.record(entry_id, user.principal)  # NotFound: another team's
    return render(
        request,
        "spiffe_entry.html",
        {
            "user": user,
            "record": record,
            "serials": service.entries.live_serials(entry_id),
            "now": dashboard(request).platform.clock.now(),
        },
    )

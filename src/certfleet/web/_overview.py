"""The overview (counts, expiry windows, findings, CA health, recent events) and the timeline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certfleet.errors import InvalidInput
from certfleet.inventory import Status
from certfleet.web._ports import RevocationFreshness
from certfleet.web._render import HtmlRoute, render, url_with
from certfleet.web._state import Dashboard, current_user, dashboard
from certfleet.web._timeline import build_chart

__all__ = ["month_window", "router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

EXPIRY_WINDOWS = (7, 30, 90)
SEVERITIES = ("critical", "high", "medium", "low", "info")


def month_window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The calendar month (UTC) holding ``now``: [first day, first day of the next)."""
    start = dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC)
    after = dt.datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=dt.UTC)
    return start, after


@dataclass(frozen=True)
class CaHealth:
    id: str
    name: str
    role: str
    not_after: dt.datetime
    freshness: RevocationFreshness
    ocsp_validity: dt.timedelta

    def crl_state(self, now: dt.datetime) -> tuple[str, dt.datetime | None]:
        full = self.freshness.crls.get("full")
        if full is None:
            return "not published yet", None
        return ("fresh" if full[1] > now else "stale"), full[1]

    def ocsp_state(self, now: dt.datetime) -> tuple[str, dt.datetime | None]:
        oldest = self.freshness.oldest_ocsp
        if oldest is None:
            return "no pre-signed responses yet", None
        expires = oldest + self.ocsp_validity
        return ("fresh" if expires > now else "stale"), expires


def ca_health(d: Dashboard) -> list[CaHealth]:
    cas = d.platform.authorities.hierarchy()
    freshness = d.queries.revocation_freshness([ca.id for ca in cas])
    validity = d.platform.revocation.settings.ocsp_validity
    return [CaHealth(ca.id, ca.name, ca.role, ca.not_after, freshness[ca.id], validity) for ca in cas]


@router.get("/")
def overview(request: Request) -> Response:
    user = current_user(request)
    d = dashboard(request)
    now = d.platform.clock.now()
    team = user.team
    month_start, month_end = month_window(now)
    by_status = d.queries.status_counts(now, team)
    return render(
        request,
        "overview.html",
        {
            "user": user,
            "now": now,
            "total": sum(by_status.values()),
            "by_status": [(s.value, by_status.get(s.value, 0)) for s in Status],
            "expiring": d.queries.expiring_counts(now, team, EXPIRY_WINDOWS),
            "month": {
                "label": month_start.strftime("%B %Y"),
                "count": d.queries.count_expiring_between(month_start, month_end, team),
                "href": url_with(
                    "/certificates",
                    {
                        "expires_after": month_start.date().isoformat(),
                        "expires_before": month_end.date().isoformat(),
                    },
                ),
            },
            "findings": d.queries.findings_by_severity(team),
            "severities": SEVERITIES,
            "cas": ca_health(d),
            "events": d.queries.recent_audit(team, 10),
            "chart": build_chart(d.queries, now, team, "team" if user.is_admin else "issuer"),
        },
    )


@router.get("/timeline")
def timeline(request: Request) -> Response:
    user = current_user(request)
    d = dashboard(request)
    group_by = request.query_params.get("group", "team" if user.is_admin else "issuer")
    if group_by not in ("team", "issuer"):
        raise InvalidInput("group must be team or issuer")
    now = d.platform.clock.now()
    chart = build_chart(d.queries, now, user.team, group_by)
    return render(request, "timeline.html", {"user": user, "now": now, "chart": chart})

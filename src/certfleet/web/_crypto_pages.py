""" "Cryptographic exposure" on the dashboard: in-use certificates by team, key algorithm and
quantum vulnerability (one grouped query per view), each quantum-vulnerable line with the
rotation campaign that moves it to the post-quantum profile. A team's session sees its own
team only; an admin every team, or one with ``?team=``."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certfleet.access import Scope
from certfleet.services.crypto_report import ExposureCount
from certfleet.web._render import HtmlRoute, render
from certfleet.web._state import current_user, dashboard

__all__ = ["router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


def _teams(counts: list[ExposureCount]) -> list[dict[str, Any]]:
    """One block per team: its lines and its totals (vulnerable, safe, weak)."""
    by_team: dict[str, list[ExposureCount]] = defaultdict(list)
    for count in counts:
        by_team[count.team or ""].append(count)
    return [
        {
            "team": team,
            "lines": lines,
            "total": sum(c.count for c in lines),
            "vulnerable": sum(c.count for c in lines if c.quantum_vulnerable),
            "safe": sum(c.count for c in lines if c.quantum_vulnerable is False),
            "weak": sum(c.count for c in lines if c.weak),
        }
        for team, lines in sorted(by_team.items())
    ]


@router.get("/crypto")
def exposure(request: Request, team: str | None = None) -> Response:
    user = current_user(request)
    user.principal.require(Scope.READ)
    scoped = team or None if user.principal.is_admin else user.principal.team
    counts = dashboard(request).platform.crypto.exposure(scoped)
    return render(request, "crypto.html", {"user": user, "team": scoped, "teams": _teams(counts)})

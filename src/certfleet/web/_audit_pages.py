"""The audit log, newest first, with the verdict of the hash-chain check."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certfleet.access import Scope
from certfleet.errors import InvalidInput
from certfleet.web._render import HtmlRoute, render, url_with
from certfleet.web._state import AUDIT_VERDICT_TTL_SECONDS, current_user, dashboard

__all__ = ["router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

AUDIT_PAGE = 100


@router.get("/audit")
def audit(request: Request) -> Response:
    """The whole log spans every team: admin tokens only (a team token sees the entries about
    its certificates on each certificate's page)."""
    user = current_user(request)
    user.principal.require(Scope.ADMIN)
    d = dashboard(request)
    before = request.query_params.get("before", "")
    if before and not before.isdigit():
        raise InvalidInput("before must be an entry number")
    action = request.query_params.get("action", "").strip()
    # Entries about certificates are ``cert:<serial>@<issuer name>``: filter by either part;
    # the issuer may be given as a CA id.
    serial = request.query_params.get("serial", "").strip().lower().removeprefix("0x").replace(":", "")
    if serial and (len(serial) > 40 or any(c not in "0123456789abcdef" for c in serial)):
        raise InvalidInput("serial must be up to 40 hex digits")
    issuer_text = request.query_params.get("issuer", "").strip()
    issuer = d.platform.audit.issuer_name(issuer_text) if issuer_text else None
    rows = d.queries.audit_page(
        before_seq=int(before) if before else None,
        limit=AUDIT_PAGE + 1,
        action=action or None,
        serial=serial or None,
        issuer=issuer,
    )
    more = len(rows) > AUDIT_PAGE
    rows = rows[:AUDIT_PAGE]
    verified = d.audit_verdict(fresh=request.query_params.get("verify") == "1")
    return render(
        request,
        "audit.html",
        {
            "user": user,
            "rows": rows,
            "action": action,
            "serial": serial,
            "issuer": issuer_text,
            "verified": verified,
            "ttl_minutes": int(AUDIT_VERDICT_TTL_SECONDS // 60),
            "next_href": url_with(
                "/audit", {"action": action, "serial": serial, "issuer": issuer_text, "before": rows[-1].seq}
            )
            if more
            else None,
        },
    )

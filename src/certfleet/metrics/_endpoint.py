"""``GET /metrics`` on the HTTPS listener: a bearer token with the configured scope."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from certfleet.access import Scope
from certfleet.errors import NotFound, Unauthenticated
from certfleet.metrics._ports import MetricsHost

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text format. A team token sees its team's certificates, findings and scans
    (as it does in the REST API); an admin token sees the whole fleet."""
    platform: MetricsHost = request.app.state.platform
    holder = platform.metrics
    if holder.settings.listen is not None:
        raise NotFound("metrics are served on their own listener ([metrics] listen)")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer token: send 'Authorization: Bearer <token>'")
    principal = platform.tokens.authenticate(token.strip())
    principal.require(Scope(holder.settings.scope))  # [metrics] scope names a Scope
    team = None if principal.is_admin else principal.team
    return Response(
        holder.exposition(team), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
    )

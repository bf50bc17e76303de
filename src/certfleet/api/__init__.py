"""The HTTP edge: the REST API on HTTPS and public CA material on plain HTTP."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from certfleet import __version__
from certfleet.api import (
    acme_admin,
    agent_admin,
    agents,
    audit,
    authorities,
    certificates,
    crypto,
    discovery,
    est_admin,
    inventory_import,
    lifecycle,
    notifications,
    policies,
    revocation,
    scep,
    scep_admin,
    tokens,
    trust,
    whoami,
)
from certfleet.api import spiffe as spiffe_routes
from certfleet.api._body_limit import BodyLimit, BodyLimits
from certfleet.api._ports import Platform
from certfleet.api._problems import DATABASE_RETRY_AFTER, _documented, install_problem_handlers, problem
from certfleet.api.acme import PREFIX as ACME_PREFIX
from certfleet.api.acme import AcmeApp, route_path
from certfleet.api.est import PREFIX as EST_PREFIX
from certfleet.api.est import EstApp
from certfleet.api.public import create_public_app
from certfleet.metrics import install_metrics
from certfleet.web import install_dashboard

__all__ = ["create_api_app", "create_public_app"]


class ApiApp(FastAPI):
    """The HTTPS app: ``/acme/...`` is answered by :class:`AcmeApp` and ``/.well-known/est/...``
    by :class:`EstApp` before Starlette sees the request (no routing, dependency injection or
    middleware for ACME's six signed requests per certificate, or an EST enrolment);
    everything else is the FastAPI app."""

    acme: AcmeApp
    est: EstApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = route_path(scope)
            if path.startswith(ACME_PREFIX):
                await self.acme(scope, receive, send)
                return
            if path.startswith(EST_PREFIX):
                await self.est(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_api_app(platform: Platform) -> FastAPI:
    app = ApiApp(
        title="certfleet",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        description="Certificate lifecycle API. Authenticate with 'Authorization: Bearer <token>'.",
    )
    app.state.platform = platform
    app.acme = AcmeApp(platform)  # RFC 8555 at /acme/, with its own body limit and metrics
    app.est = EstApp(platform)  # RFC 7030 at /.well-known/est/, behind the same body limit
    install_problem_handlers(app)
    app.include_router(certificates.router)
    app.include_router(revocation.router)
    app.include_router(revocation.revocations_router)
    app.include_router(discovery.router)
    app.include_router(agents.agent_router)
    app.include_router(agents.admin_router)
    app.include_router(spiffe_routes.agent_router)  # the workload endpoint's SVIDs and bundle
    app.include_router(spiffe_routes.admin_router)
    app.include_router(spiffe_routes.public_router)  # SPIFFE bundle, JWKS, OIDC discovery
    app.include_router(lifecycle.router)
    app.include_router(authorities.router)
    app.include_router(acme_admin.router)
    app.include_router(audit.router)
    app.include_router(inventory_import.router)
    app.include_router(policies.router)
    app.include_router(tokens.router)
    app.include_router(agent_admin.router)
    app.include_router(notifications.router)
    app.include_router(scep_admin.router)
    app.include_router(est_admin.router)
    app.include_router(whoami.router)
    app.include_router(trust.router)
    app.include_router(trust.agent_router)
    app.include_router(crypto.router)
    app.include_router(scep.router)  # RFC 8894 at /scep, as on the plain-HTTP listener

    @app.get("/healthz", response_class=PlainTextResponse, tags=["health"], responses=_documented(503))
    async def healthz() -> Response:
        """200 ``ok`` while this node can serve; 503 problem+json naming why not (its
        database out of reach, ...), so a load balancer sends its requests elsewhere."""
        reasons = await run_in_threadpool(platform.unhealthy_reasons)
        if reasons:
            return problem(
                503, "Service Unavailable", "; ".join(reasons), {"Retry-After": DATABASE_RETRY_AFTER}
            )
        return PlainTextResponse("ok\n")

    install_metrics(app)  # /metrics
    install_dashboard(app, platform)  # the web dashboard at "/" (after the API routes)
    # Added last, so outermost: no route or dashboard form reads an unbounded body (ACME,
    # answered before this stack, bounds its own).
    app.add_middleware(BodyLimit, limits=BodyLimits(platform.settings.server.max_body_bytes))
    return app

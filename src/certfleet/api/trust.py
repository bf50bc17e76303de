"""``GET /api/v1/trust/report``: the CA consolidation report (see
:mod:`certfleet.services.trust_report`). A team's token sees its own team's leaves and
issuers; the roots are the fleet's (what each host trusts belongs to no team)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.api.agents import CurrentAgent
from certfleet.errors import Forbidden
from certfleet.services.discovery import agent_readings
from certfleet.services.trust_report import DEFAULT_HORIZON_DAYS

router = APIRouter(prefix="/api/v1/trust", tags=["trust"], responses=PROBLEM_RESPONSES)
agent_router = APIRouter(prefix="/api/v1/agent", tags=["agent"], responses=PROBLEM_RESPONSES)
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


class _StoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["system", "anchors", "java", "nss", "certifi"]
    path: str = Field(min_length=1, max_length=4096)
    format: str = Field(default="", max_length=16)
    error: str | None = Field(default=None, max_length=2000)
    roots: list[str] = Field(default_factory=list, max_length=10_000)


class TrustStoresIn(BaseModel):
    """The host's stores: each distinct root once (base64 DER by SHA-256 fingerprint), and
    each store as the fingerprints of the roots it trusts."""

    model_config = ConfigDict(extra="forbid")

    roots: dict[str, str] = Field(default_factory=dict, max_length=10_000)
    stores: list[_StoreIn] = Field(max_length=1000)


@agent_router.post("/trust-stores", status_code=201)
async def report_trust_stores(
    body: TrustStoresIn, agent: CurrentAgent, platform: PlatformDep
) -> dict[str, Any]:
    """An agent's report of its host's trust stores, recorded under its host name."""
    readings = agent_readings(body.roots, [s.model_dump() for s in body.stores])

    def record() -> dict[str, Any]:
        recorded = platform.discovery.record_trust_stores(
            agent.name, readings, team=agent.team, actor=f"agent:{agent.name}"
        )
        return recorded.to_dict()

    return await run_in_threadpool(record)

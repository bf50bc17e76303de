"""Agent administration over HTTP (admin): mint a one-time join token, revoke an agent. The
listings (``GET /api/v1/agents``, ``/api/v1/agents/deployments``) are in
:mod:`certfleet.api.agents`; the calls are the ones ``certfleet agent`` makes beside the data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.api._admin import StrictBody, require_admin
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.api.agents import AgentOut
from certfleet.lifecycle.planning import parse_duration
from certfleet.x509 import fingerprint_sha256

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/agents", tags=["agents"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]


class JoinTokenCreate(StrictBody):
    host: str = Field(min_length=1, max_length=253, description="The host (DNS name) the agent will be.")
    team: str | None = Field(
        default=None, max_length=100, description="Team owning the agent and its certificates."
    )
    ttl: str = Field(
        default="1h", max_length=20, description="How long the token stays usable (s, m, h, d; at most 7d)."
    )
    allow_names: list[Annotated[str, Field(max_length=253)]] = Field(
        default_factory=list,
        max_length=100,
        description="Name patterns the agent may have issued (*.x, **.x, CIDR); default: the host.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"host": "web1.example.com", "team": "web", "ttl": "1h", "allow_names": ["*.example.com"]}
            ]
        }
    )


class JoinTokenOut(BaseModel):
    token: str = Field(description="The one-time join token, shown this once: only its hash is stored.")
    id: str
    host: str
    team: str | None
    allow_names: list[str]
    expires_at: str | None
    ca_fingerprint: str = Field(
        description="SHA-256 of the root, for 'certfleet agent enroll --ca-fingerprint'."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "cfj_a1b2c3d4e5f6_<secret>",
                    "id": "a1b2c3d4e5f6",
                    "host": "web1.example.com",
                    "team": "web",
                    "allow_names": ["*.example.com"],
                    "expires_at": "2026-12-03T11:00:00Z",
                    "ca_fingerprint": "3b1f" * 16,
                }
            ]
        }
    )


@router.post("/join-tokens", status_code=201, response_model=JoinTokenOut, summary="Mint an agent join token")
async def create_join_token(
    body: JoinTokenCreate, principal: CurrentPrincipal, platform: PlatformDep, response: Response
) -> JoinTokenOut:
    """A one-time token a host spends on enrolment (admin), with the root's fingerprint the
    host pins."""
    require_admin(principal)
    minted = await run_in_threadpool(
        lambda: platform.agents.create_join_token(
            body.host,
            team=body.team,
            ttl=parse_duration(body.ttl),
            allow_names=body.allow_names,
            actor=principal.name,
        )
    )
    # The root agents pin: the listener's classic root over an ML-DSA default root.
    root = await run_in_threadpool(lambda: platform.authorities.tls_root() or platform.authorities.root())
    response.headers["Cache-Control"] = "no-store"
    return JoinTokenOut(**minted.to_dict(), ca_fingerprint=fingerprint_sha256(root.certificate))


@router.post("/{name}/revoke", response_model=AgentOut, summary="Revoke an agent")
async def revoke_agent(
    name: Annotated[str, Path(max_length=253, description="The agent (host name).")],
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> AgentOut:
    """Refuse the agent from now on and revoke its identity certificates (admin). 404 for no
    such agent, 409 when it is already revoked."""
    require_admin(principal)
    agent = await run_in_threadpool(lambda: platform.agents.revoke(name, actor=principal.name))
    return AgentOut.model_validate(agent.to_dict())

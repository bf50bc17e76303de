"""Host agents over HTTPS: ``/api/v1/agent/...`` is what an agent calls (enrolment with a
one-time token, then only with its mTLS client certificate); ``/api/v1/agents`` is what an
operator reads (agents and where they deployed what)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Principal, Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._peer_certificate import client_certificate_der
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.api._schemas import CertificateOut
from certfleet.api.revocation import RevokeRequest, revoke_as
from certfleet.ca import SERVER_IDENTITY_ROLE
from certfleet.clock import iso
from certfleet.errors import Forbidden, Unauthenticated
from certfleet.services.agents import Agent, Deployment, DeploymentReport, DeploymentStatus, Instruction
from certfleet.x509 import fingerprint_sha256, to_pem

__all__ = ["admin_router", "agent_router"]

agent_router = APIRouter(prefix="/api/v1/agent", tags=["agent"], responses=PROBLEM_RESPONSES)
admin_router = APIRouter(prefix="/api/v1/agents", tags=["agents"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]

_MAX_PEM = 64 * 1024


def _current_agent(request: Request) -> Agent:
    # Sync: FastAPI runs it in the thread pool, off the event loop (it reads the database).
    der = client_certificate_der(request.scope)
    if der is None:
        raise Unauthenticated(
            "this endpoint needs an agent's TLS client certificate: enrol with 'certfleet agent enroll'"
        )
    return get_platform(request).agents.authenticate(der)


CurrentAgent = Annotated[Agent, Depends(_current_agent)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EnrollRequest(_Strict):
    token: str = Field(max_length=200, description="The one-time join token (cfj_...).")
    csr: str = Field(max_length=_MAX_PEM, description="PEM CSR of the key the agent generated.")


class IdentityOut(BaseModel):
    host: str
    team: str | None
    certificate_pem: str
    chain_pem: str
    not_after: str


class CsrRequest(_Strict):
    csr: str = Field(max_length=_MAX_PEM)


class AgentIssueRequest(_Strict):
    name: str = Field(max_length=64, description="The certificate's name in the agent config.")
    csr: str = Field(max_length=_MAX_PEM)
    profile: str = "tls-server"
    validity_days: int | None = Field(default=None, ge=1, le=36600)


class AgentIssueResponse(BaseModel):
    certificate: CertificateOut
    certificate_pem: str
    chain_pem: str
    fullchain_pem: str
    reused: bool = Field(description="True when a retry got the certificate issued before.")


class DeploymentIn(_Strict):
    name: str = Field(max_length=64)
    status: Literal["deployed", "failed", "rolled_back"]
    certificate_pem: str = Field(max_length=_MAX_PEM, description="The leaf, then its chain.")
    files: dict[str, str] = Field(default_factory=dict, max_length=7)
    endpoint: str | None = Field(default=None, max_length=300, description="HOST:PORT")
    sni: str | None = Field(default=None, max_length=255)
    issuer: Literal["certfleet", "acme"] = "certfleet"
    detail: str = Field(default="", max_length=2000)


class DeploymentOut(BaseModel):
    id: int | None
    host: str
    name: str
    serial: str
    fingerprint_sha256: str
    status: str
    files: dict[str, str]
    paths: list[str]
    endpoint: str | None
    sni: str | None
    issuer: str
    detail: str
    reported_at: str | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 41,
                    "host": "web1.example.com",
                    "name": "www",
                    "serial": "5f1c0e2a9b",
                    "fingerprint_sha256": "3b1f" * 16,
                    "status": "deployed",
                    "files": {"fullchain": "/etc/nginx/tls/www.pem", "key": "/etc/nginx/tls/www.key"},
                    "paths": ["/etc/nginx/tls/www.key", "/etc/nginx/tls/www.pem"],
                    "endpoint": "127.0.0.1:443",
                    "sni": "www.example.com",
                    "issuer": "certfleet",
                    "detail": "",
                    "reported_at": "2026-12-03T10:06:00Z",
                }
            ]
        }
    )


class InstructionOut(BaseModel):
    name: str
    serial: str
    fingerprint_sha256: str
    status: str
    renew_from: str | None = Field(description="Renew at a random time between this and renew_by.")
    renew_by: str | None
    profile: str | None = Field(
        default=None, description="Renew under this profile (a rotation campaign moving the certificate)."
    )
    key_type: str | None = Field(default=None, description="With a new key of this type, e.g. ml-dsa-65.")


class InstructionsOut(BaseModel):
    host: str
    certificates: list[InstructionOut]
    identity: InstructionOut | None = Field(
        default=None, description="When to renew the identity this request presented (mTLS)."
    )


def _instruction_out(i: Instruction) -> InstructionOut:
    return InstructionOut(
        name=i.name,
        serial=i.serial,
        fingerprint_sha256=i.fingerprint_sha256,
        status=i.status,
        renew_from=iso(i.renew_from),
        renew_by=iso(i.renew_by),
        profile=i.profile,
        key_type=i.key_type,
    )


class AgentOut(BaseModel):
    """An agent as ``certfleet agent list --format json`` shows it."""

    name: str
    team: str | None
    allow_names: list[str]
    status: str
    enrolled_at: str | None
    revoked_at: str | None
    last_seen: str | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "web1.example.com",
                    "team": "web",
                    "allow_names": ["*.example.com"],
                    "status": "active",
                    "enrolled_at": "2026-12-03T10:00:00Z",
                    "revoked_at": None,
                    "last_seen": "2026-12-03T10:05:00Z",
                }
            ]
        }
    )


def _deployment_out(deployment: Deployment) -> DeploymentOut:
    return DeploymentOut.model_validate(deployment.to_dict())


# -- what an agent calls -------------------------------------------------------------------


@agent_router.get("/ca.pem", response_class=Response)
def ca_pem(platform: PlatformDep) -> Response:
    """The root, the issuing chain, then the server-identity CAs. An enrolling agent reads
    this before it trusts the server: it keeps it only if the root's SHA-256 is the
    fingerprint it was given and every other certificate is a CA signed by that root, and it
    then accepts the server only through a server-identity CA (see certfleet.agent.trust).
    Over an ML-DSA default root the pinned root is the classic listener root instead: the
    bundle is that root and its server-identity CAs (the ML-DSA chain, which it did not sign,
    is left out; agents learn that root from /trust-anchors)."""
    default = platform.authorities.root()
    root = platform.authorities.tls_root() or default
    chain = platform.authorities.issuing_authority().chain if root.id == default.id else ()
    server_cas = [
        ca.certificate
        for ca in platform.authorities.hierarchy()
        if ca.role == SERVER_IDENTITY_ROLE and ca.active and ca.parent_id == root.id
    ]
    return Response(to_pem([root.certificate, *chain, *server_cas]), media_type="application/x-pem-file")


@agent_router.post("/enroll", status_code=201, response_model=IdentityOut)
async def enroll(body: EnrollRequest, platform: PlatformDep, response: Response) -> IdentityOut:
    """Spend a one-time join token: certify the agent's own key as its mTLS identity."""
    enrolment = await run_in_threadpool(platform.agents.enroll, body.token, body.csr.encode())
    response.headers["Cache-Control"] = "no-store"
    issued = enrolment.issued
    return IdentityOut(
        host=enrolment.agent.name,
        team=enrolment.agent.team,
        certificate_pem=to_pem([issued.certificate]),
        chain_pem=to_pem(issued.chain),
        not_after=iso(issued.certificate.not_valid_after_utc) or "",
    )


@agent_router.post("/identity", status_code=201, response_model=IdentityOut)
async def renew_identity(body: CsrRequest, agent: CurrentAgent, platform: PlatformDep) -> IdentityOut:
    """A new identity certificate for a new key, before the current one expires."""
    issued = await run_in_threadpool(platform.agents.renew_identity, agent, body.csr.encode())
    return IdentityOut(
        host=agent.name,
        team=agent.team,
        certificate_pem=to_pem([issued.certificate]),
        chain_pem=to_pem(issued.chain),
        not_after=iso(issued.certificate.not_valid_after_utc) or "",
    )


@agent_router.post("/certificates", status_code=201, response_model=AgentIssueResponse)
async def issue(body: AgentIssueRequest, agent: CurrentAgent, platform: PlatformDep) -> AgentIssueResponse:
    """Issue for a CSR of a key the agent holds; names must match the agent's policy."""
    result = await run_in_threadpool(
        lambda: platform.agents.issue(
            agent, body.name, body.csr.encode(), profile=body.profile, validity_days=body.validity_days
        )
    )
    issued = result.issued
    return AgentIssueResponse(
        certificate=CertificateOut.model_validate(result.record.to_dict(platform.clock.now())),
        certificate_pem=to_pem([issued.certificate]),
        chain_pem=to_pem(issued.chain),
        fullchain_pem=to_pem(issued.fullchain),
        reused=result.reused,
    )


@agent_router.post("/certificates/{serial}/revoke", response_model=CertificateOut)
async def revoke(
    serial: str,
    agent: CurrentAgent,
    platform: PlatformDep,
    body: Annotated[RevokeRequest | None, Body()] = None,
) -> CertificateOut:
    """Revoke the agent's own identity certificate (a retired host, a leaked key), or a
    certificate of its team whose every name the agent's patterns cover. Another agent's
    identity is 403, like any name outside the patterns."""
    principal = Principal(f"agent:{agent.name}", agent.team, Scope.REVOKE, agent.allow_names)
    return await revoke_as(platform, principal, serial, body)


@agent_router.post("/deployments", status_code=201, response_model=DeploymentOut)
async def report(body: DeploymentIn, agent: CurrentAgent, platform: PlatformDep) -> DeploymentOut:
    """Report a deployment (or a failed one): the inventory learns where the certificate lives."""
    deployment_report = DeploymentReport(
        name=body.name,
        status=DeploymentStatus(body.status),
        certificate_pem=body.certificate_pem.encode(),
        files=body.files,
        endpoint=body.endpoint,
        sni=body.sni,
        issuer=body.issuer,
        detail=body.detail,
    )
    deployment = await run_in_threadpool(platform.agents.report, agent, deployment_report)
    return _deployment_out(deployment)


@agent_router.get("/instructions", response_model=InstructionsOut)
async def instructions(agent: CurrentAgent, platform: PlatformDep, request: Request) -> InstructionsOut:
    """When the server wants each of the agent's certificates, and its identity, renewed (the
    ARI window, moved by an operator's renew-now, a revocation or a rotation campaign; a
    window that has ended means renew now)."""
    found = await run_in_threadpool(platform.agents.instructions, agent)
    der = client_certificate_der(request.scope)
    identity = await run_in_threadpool(platform.agents.identity_instruction, der) if der else None
    return InstructionsOut(
        host=agent.name,
        certificates=[_instruction_out(i) for i in found],
        identity=_instruction_out(identity) if identity is not None else None,
    )


class TrustAnchorOut(BaseModel):
    subject: str
    fingerprint_sha256: str
    not_after: str
    certificate_pem: str


class TrustAnchorsOut(BaseModel):
    roots: list[TrustAnchorOut]


@agent_router.get("/trust-anchors", response_model=TrustAnchorsOut)
async def trust_anchors(agent: CurrentAgent, platform: PlatformDep) -> TrustAnchorsOut:
    """Every active certfleet root (the default hierarchy's and any other, e.g. a post-quantum
    one made by ``certfleet ca create``), for agents with ``trust_store: system`` to put in
    their host's store before a leaf chaining to one is deployed. Only here, behind mTLS:
    the unauthenticated ``ca.pem`` never teaches an agent a root."""
    cas = await run_in_threadpool(platform.authorities.hierarchy)
    now = platform.clock.now()
    return TrustAnchorsOut(
        roots=[
            TrustAnchorOut(
                subject=ca.certificate.subject.rfc4514_string(),
                fingerprint_sha256=fingerprint_sha256(ca.certificate),
                not_after=iso(ca.not_after) or "",
                certificate_pem=to_pem([ca.certificate]),
            )
            for ca in cas
            if ca.role == "root" and ca.active and ca.not_after > now
        ]
    )


# -- what an operator reads ----------------------------------------------------------------


@admin_router.get("", response_model=list[AgentOut], summary="List enrolled agents")
async def list_agents(principal: CurrentPrincipal, platform: PlatformDep) -> list[AgentOut]:
    """Enrolled agents (a non-admin token sees its own team's)."""
    principal.require(Scope.READ)
    agents = await run_in_threadpool(platform.agents.list_agents)
    return [AgentOut.model_validate(a.to_dict()) for a in agents if principal.can_see_team(a.team)]


@admin_router.get(
    "/deployments", response_model=list[DeploymentOut], summary="List where agents deployed certificates"
)
async def list_deployments(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    host: Annotated[str | None, Query(max_length=253, description="Only this agent.")] = None,
    history: Annotated[bool, Query(description="Every report, not only the latest per name.")] = False,
) -> list[DeploymentOut]:
    """Where agents deployed certificates: host, paths, endpoint, and the outcome."""
    principal.require(Scope.READ)

    def load() -> list[DeploymentOut]:
        teams = {a.name: a.team for a in platform.agents.list_agents()}
        if host is not None and host in teams and not principal.can_see_team(teams[host]):
            raise Forbidden("this token may read only its own team's agents")
        found = platform.agents.deployments(host, latest=not history)
        return [_deployment_out(d) for d in found if principal.can_see_team(teams.get(d.agent_name))]

    return await run_in_threadpool(load)

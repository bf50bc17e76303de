"""SPIFFE over HTTPS: what an agent (the workload endpoint) fetches under
``/api/v1/agent/spiffe/`` with its mTLS identity; the registration entries an operator
manages under ``/api/v1/spiffe/entries``; and the public trust bundle, JWKS and OIDC
discovery document that federated trust domains and JWT relying parties read."""

from __future__ import annotations

from typing import Annotated, Any, Protocol, cast

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Scope
from certfleet.api._auth import CurrentPrincipal
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.api.agents import CurrentAgent
from certfleet.services.spiffe import MAX_SVID_REQUESTS, SpiffeService
from certfleet.spiffe import parse_ttl

__all__ = ["PUBLIC_PATHS", "admin_router", "agent_router", "public_document", "public_router"]

agent_router = APIRouter(prefix="/api/v1/agent/spiffe", tags=["spiffe-agent"], responses=PROBLEM_RESPONSES)
admin_router = APIRouter(prefix="/api/v1/spiffe", tags=["spiffe"], responses=PROBLEM_RESPONSES)
public_router = APIRouter(tags=["spiffe-public"], responses=PROBLEM_RESPONSES)

_MAX_PEM = 64 * 1024


class _SpiffePlatform(Protocol):
    @property
    def spiffe(self) -> SpiffeService: ...


def _service(request: Request) -> SpiffeService:
    return cast(_SpiffePlatform, request.app.state.platform).spiffe


Spiffe = Annotated[SpiffeService, Depends(_service)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SvidRequest(_Strict):
    entry_id: str = Field(max_length=32)
    csr: str = Field(max_length=_MAX_PEM, description="PEM PKCS#10 of a key the agent made.")


class X509SvidsRequest(_Strict):
    requests: list[SvidRequest] = Field(min_length=1, max_length=MAX_SVID_REQUESTS)


class JwtSvidRequest(_Strict):
    entry_id: str = Field(max_length=32)
    audience: list[str] = Field(min_length=1, max_length=10)


class EntryIn(_Strict):
    spiffe_id: str = Field(max_length=2048)
    parent_id: str = Field(max_length=300)
    selectors: list[str] = Field(min_length=1, max_length=32)
    ttl: str | None = Field(default=None, max_length=16, description="3600, 30m, 1h or 1d (default 1h).")
    dns_names: list[str] = Field(default_factory=list, max_length=32)
    team: str | None = Field(default=None, max_length=100)


class RevokeSvidsIn(_Strict):
    reason: str = Field(default="unspecified", max_length=40)


# -- what an agent calls -------------------------------------------------------------------


@agent_router.get("/entries")
async def agent_entries(agent: CurrentAgent, spiffe: Spiffe) -> dict[str, Any]:
    """The entries this agent parents, and the revision of the entry set."""
    return await run_in_threadpool(spiffe.agent_entries, agent)


@agent_router.post("/x509-svids")
async def x509_svids(body: X509SvidsRequest, agent: CurrentAgent, spiffe: Spiffe) -> dict[str, Any]:
    """X509-SVIDs for keys the agent made: the names are the entry's, never the CSR's."""
    requests = [(r.entry_id, r.csr.encode()) for r in body.requests]
    issued = await run_in_threadpool(spiffe.issue_x509, agent, requests)
    return {"svids": [s.to_dict() for s in issued]}


@agent_router.post("/jwt-svids")
async def jwt_svids(body: JwtSvidRequest, agent: CurrentAgent, spiffe: Spiffe) -> dict[str, Any]:
    svid = await run_in_threadpool(spiffe.issue_jwt, agent, body.entry_id, body.audience)
    return {
        "spiffe_id": svid.spiffe_id,
        "token": svid.token,
        "expires_at": svid.expires_at.isoformat().replace("+00:00", "Z"),
    }


@agent_router.get("/bundle")
async def agent_bundle(agent: CurrentAgent, spiffe: Spiffe) -> dict[str, Any]:
    return await run_in_threadpool(spiffe.agent_bundle)


# -- what an operator calls ----------------------------------------------------------------


@admin_router.post("/entries", status_code=201)
async def create_entry(body: EntryIn, principal: CurrentPrincipal, spiffe: Spiffe) -> dict[str, Any]:
    """Register an entry; a team's token registers for its team, within the policy's
    ``spiffe_id_prefixes`` for it."""

    def create() -> dict[str, Any]:
        entry = spiffe.entries.create(
            body.spiffe_id,
            body.parent_id,
            body.selectors,
            actor=principal.name,
            ttl=parse_ttl(body.ttl) if body.ttl is not None else None,
            dns_names=body.dns_names,
            team=body.team,
            principal=principal,
        )
        return spiffe.entries.record(entry.id).to_dict()

    return await run_in_threadpool(create)


@admin_router.get("/entries")
async def list_entries(
    principal: CurrentPrincipal, spiffe: Spiffe, parent_id: str | None = None
) -> list[dict[str, Any]]:
    principal.require(Scope.READ)
    found = await run_in_threadpool(spiffe.entries.records, principal, parent_id=parent_id)
    return [r.to_dict() for r in found]


@admin_router.get("/entries/{entry_id}")
async def show_entry(entry_id: str, principal: CurrentPrincipal, spiffe: Spiffe) -> dict[str, Any]:
    principal.require(Scope.READ)
    return (await run_in_threadpool(spiffe.entries.record, entry_id, principal)).to_dict()


@admin_router.delete("/entries/{entry_id}", status_code=204)
async def delete_entry(entry_id: str, principal: CurrentPrincipal, spiffe: Spiffe) -> Response:
    await run_in_threadpool(
        lambda: spiffe.entries.delete(entry_id, actor=principal.name, principal=principal)
    )
    return Response(status_code=204)


@admin_router.post("/entries/{entry_id}/revoke")
async def revoke_svids(
    entry_id: str, body: RevokeSvidsIn, principal: CurrentPrincipal, spiffe: Spiffe
) -> dict[str, Any]:
    """Revoke the entry's live SVIDs (the SPIFFE CA's CRL and OCSP then say so)."""

    def revoke() -> list[str]:
        principal.require(Scope.REVOKE)
        spiffe.entries.record(entry_id, principal)  # not found unless the principal sees its team
        return spiffe.revoke_svids(entry_id, body.reason, actor=principal.name)

    return {"entry_id": entry_id, "revoked": await run_in_threadpool(revoke)}


# -- public: federation and OIDC -----------------------------------------------------------


@public_router.get("/spiffe/bundle")
async def bundle(spiffe: Spiffe) -> dict[str, Any]:
    """The trust bundle in the SPIFFE bundle format (JWKS with spiffe_sequence)."""
    return await run_in_threadpool(spiffe.bundle)


@public_router.get("/spiffe/jwks")
async def jwks(spiffe: Spiffe) -> dict[str, Any]:
    return await run_in_threadpool(spiffe.jwks)


@public_router.get("/.well-known/openid-configuration")
async def openid_configuration(spiffe: Spiffe) -> dict[str, Any]:
    return await run_in_threadpool(spiffe.openid_configuration)


# The same documents on the plain-HTTP listener (a bare ASGI app: api.public dispatches here).
PUBLIC_PATHS = frozenset({"/spiffe/bundle", "/spiffe/jwks", "/.well-known/openid-configuration"})


def public_document(platform: object, path: str) -> dict[str, Any]:
    """The SPIFFE bundle, the JWKS or the OIDC discovery document for ``path`` (one of
    :data:`PUBLIC_PATHS`); NotFound before ``spiffe init``."""
    service = cast(_SpiffePlatform, platform).spiffe
    if path == "/spiffe/bundle":
        return service.bundle()
    if path == "/spiffe/jwks":
        return service.jwks()
    return service.openid_configuration()

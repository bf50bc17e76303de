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


# -- response documents (the OpenAPI reference shows them; the services build the dicts) -----


class AgentEntryOut(BaseModel):
    id: str
    spiffe_id: str = Field(examples=["spiffe://example.org/ns/app"])
    parent_id: str = Field(examples=["spiffe://example.org/agent/web-1"])
    selectors: list[str] = Field(examples=[["unix:uid:1000", "unix:path:/usr/bin/app"]])
    ttl_seconds: int = Field(examples=[3600])
    dns_names: list[str]


class AgentEntriesOut(BaseModel):
    trust_domain: str = Field(examples=["example.org"])
    agent_id: str = Field(examples=["spiffe://example.org/agent/web-1"])
    revision: int = Field(description="Changes whenever the entry set changes: refetch then.")
    entries: list[AgentEntryOut]


class X509SvidOut(BaseModel):
    entry_id: str
    spiffe_id: str
    certificate: str = Field(description="PEM leaf: one URI SAN, the SPIFFE ID.")
    chain: str = Field(description="PEM intermediates up to, not including, the root.")
    expires_at: str


class X509SvidsOut(BaseModel):
    svids: list[X509SvidOut]


class JwtSvidOut(BaseModel):
    spiffe_id: str
    token: str = Field(description="Compact JWS, ES256, kid in the header.")
    expires_at: str


class AgentBundleOut(BaseModel):
    trust_domain: str
    x509_authorities: list[str] = Field(description="PEM roots.")
    jwt_authorities: dict[str, list[dict[str, Any]]] = Field(description="A JWK Set (use jwt-svid).")
    refresh_hint_seconds: int


class EntryOut(AgentEntryOut):
    team: str | None
    created_at: str | None
    created_by: str
    certificate_id: int | None = Field(description="The entry's one inventory record: its live SVID.")
    svids_issued: int
    live_svids: int = Field(description="SVIDs still valid and not revoked.")
    last_issued_at: str | None
    live_serial: str | None
    live_fingerprint_sha256: str | None
    live_not_after: str | None


class RevokedOut(BaseModel):
    entry_id: str
    revoked: list[str] = Field(description="Serials revoked (hex).")


class SpiffeBundleOut(BaseModel):
    keys: list[dict[str, Any]] = Field(description="use x509-svid (x5c) and use jwt-svid (kid) keys.")
    spiffe_sequence: int
    spiffe_refresh_hint: int


class JwksOut(BaseModel):
    keys: list[dict[str, Any]]


class OpenIdConfigurationOut(BaseModel):
    issuer: str
    jwks_uri: str
    authorization_endpoint: str
    response_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]


# -- what an agent calls -------------------------------------------------------------------


@agent_router.get("/entries", response_model=AgentEntriesOut)
async def agent_entries(agent: CurrentAgent, spiffe: Spiffe) -> dict[str, Any]:
    """The entries this agent parents, and the revision of the entry set."""
    return await run_in_threadpool(spiffe.agent_entries, agent)


@agent_router.post("/x509-svids", response_model=X509SvidsOut)
async def x509_svids(body: X509SvidsRequest, agent: CurrentAgent, spiffe: Spiffe) -> dict[str, Any]:
    """X509-SVIDs for keys the agent made: the names are the entry's, never the CSR's."""
    requests = [(r.entry_id, r.csr.encode()) for r in body.requests]
    issued = await run_in_threadpool(spiffe.issue_x509, agent, requests)
    return {"svids": [s.to_dict() for s in issued]}


@agent_router.post("/jwt-svids", response_model=JwtSvidOut)
async def jwt_svids(body: JwtSvidRequest, agent: CurrentAgent, spiffe: Spiffe) -> dict[str, Any]:
    svid = await run_in_threadpool(spiffe.issue_jwt, agent, body.entry_id, body.audience)
    return {
        "spiffe_id": svid.spiffe_id,
        "token": svid.token,
        "expires_at": svid.expires_at.isoformat().replace("+00:00", "Z"),
    }


@agent_router.get("/bundle", response_model=AgentBundleOut)
async def agent_bundle(agent: CurrentAgent, spiffe: Spiffe) -> dict[str, Any]:
    return await run_in_threadpool(spiffe.agent_bundle)


# -- what an operator calls ----------------------------------------------------------------


@admin_router.post("/entries", status_code=201, response_model=EntryOut)
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


@admin_router.get("/entries", response_model=list[EntryOut])
async def list_entries(
    principal: CurrentPrincipal, spiffe: Spiffe, parent_id: str | None = None
) -> list[dict[str, Any]]:
    principal.require(Scope.READ)
    found = await run_in_threadpool(spiffe.entries.records, principal, parent_id=parent_id)
    return [r.to_dict() for r in found]


@admin_router.get("/entries/{entry_id}", response_model=EntryOut)
async def show_entry(entry_id: str, principal: CurrentPrincipal, spiffe: Spiffe) -> dict[str, Any]:
    principal.require(Scope.READ)
    return (await run_in_threadpool(spiffe.entries.record, entry_id, principal)).to_dict()


@admin_router.delete("/entries/{entry_id}", status_code=204)
async def delete_entry(entry_id: str, principal: CurrentPrincipal, spiffe: Spiffe) -> Response:
    await run_in_threadpool(
        lambda: spiffe.entries.delete(entry_id, actor=principal.name, principal=principal)
    )
    return Response(status_code=204)


@admin_router.post("/entries/{entry_id}/revoke", response_model=RevokedOut)
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


@public_router.get("/spiffe/bundle", response_model=SpiffeBundleOut)
async def bundle(spiffe: Spiffe) -> dict[str, Any]:
    """The trust bundle in the SPIFFE bundle format (JWKS with spiffe_sequence)."""
    return await run_in_threadpool(spiffe.bundle)


@public_router.get("/spiffe/jwks", response_model=JwksOut)
async def jwks(spiffe: Spiffe) -> dict[str, Any]:
    return await run_in_threadpool(spiffe.jwks)


@public_router.get("/.well-known/openid-configuration", response_model=OpenIdConfigurationOut)
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

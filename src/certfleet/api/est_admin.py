"""EST credentials over HTTP (admin): create one (its password shown once), list them (never
their passwords), revoke one, with the same :class:`~certfleet.services.est.EstService` calls
as ``certfleet est credential``. Admin only: a credential lets whoever holds it enrol for a
team (RFC 7030 section 3.2.3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.api._admin import StrictBody, require_admin
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/est/credentials", tags=["est-admin"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]

_CREDENTIAL_EXAMPLE: dict[str, Any] = {
    "id": "5d1e0c9b8a7f",
    "username": "est_5d1e0c9b8a7f",
    "team": "routers",
    "profile": None,
    "names": ["*.edge.example.test"],
    "created_at": "2026-12-03T10:00:00Z",
    "revoked_at": None,
}


class CredentialCreate(StrictBody):
    team: str = Field(min_length=1, max_length=100, description="Team the enrolled certificates belong to.")
    profile: str | None = Field(
        default=None, max_length=100, description="The only profile (CA label) it may enrol under."
    )
    names: list[Annotated[str, Field(max_length=253)]] = Field(
        default_factory=list,
        max_length=100,
        description="Name patterns the CSR's names must match (*.x, **.x, CIDR); none: any name.",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"team": "routers", "names": ["*.edge.example.test"]}]}
    )


class CredentialOut(BaseModel):
    """A credential as ``certfleet est credential list --format json`` shows it (never its
    password)."""

    id: str
    username: str
    team: str
    profile: str | None
    names: list[str]
    created_at: str | None
    revoked_at: str | None

    model_config = ConfigDict(json_schema_extra={"examples": [_CREDENTIAL_EXAMPLE]})


class CredentialCreated(CredentialOut):
    password: str = Field(description="The Basic password, shown this once: only its hash is stored.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_CREDENTIAL_EXAMPLE, "password": "<secret>"}]}
    )


@router.post("", status_code=201, response_model=CredentialCreated, summary="Create an EST credential")
async def create_credential(
    body: CredentialCreate, principal: CurrentPrincipal, platform: PlatformDep, response: Response
) -> CredentialCreated:
    """Mint a Basic credential (admin). The answer carries the password once."""
    require_admin(principal)
    minted = await run_in_threadpool(
        lambda: platform.est.create_credential(
            body.team, profile=body.profile, names=body.names, actor=principal.name
        )
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Location"] = f"{router.prefix}/{minted.record.username}"
    return CredentialCreated(**minted.record.to_dict(), password=minted.password)


@router.get("", response_model=list[CredentialOut], summary="List EST credentials")
async def list_credentials(principal: CurrentPrincipal, platform: PlatformDep) -> list[CredentialOut]:
    """Every credential, revoked ones included, without passwords (admin)."""
    require_admin(principal)
    credentials = await run_in_threadpool(platform.est.list_credentials)
    return [CredentialOut.model_validate(c.to_dict()) for c in credentials]


@router.delete("/{username}", status_code=204, response_class=Response, summary="Revoke an EST credential")
async def revoke_credential(
    username: Annotated[str, Path(max_length=64, description="The username (est_...) or its id.")],
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> Response:
    """Revoke at once (admin): the next enrolment with it is 401. 404 for no active credential."""
    require_admin(principal)
    await run_in_threadpool(lambda: platform.est.revoke_credential(username, actor=principal.name))
    return Response(status_code=204)

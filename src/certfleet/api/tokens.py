"""API tokens over HTTP (admin): create one (its secret shown once), list them (never their
secrets), revoke one. The same :class:`~certfleet.services.tokens.TokenService` calls as
``certfleet token``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Scope
from certfleet.api._admin import StrictBody, require_admin
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]

_TOKEN_EXAMPLE: dict[str, Any] = {
    "id": "3f9a0c1b2d4e",
    "team": "payments",
    "scope": "issue",
    "allow_names": ["*.pay.example.com"],
    "description": "CI pipeline of the payments service",
    "created_at": "2026-12-03T10:00:00Z",
    "revoked_at": None,
}


class TokenCreate(StrictBody):
    team: str = Field(min_length=1, max_length=100, description="Team the token acts for.")
    scope: str = Field(
        default="read",
        max_length=20,
        description="read, issue, revoke or admin (issue does not include revoke).",
    )
    allow_names: list[Annotated[str, Field(max_length=253)]] = Field(
        default_factory=list,
        max_length=100,
        description="Name patterns an issue or revoke token may act on (*.x, **.x, CIDR).",
    )
    description: str = Field(default="", max_length=500, description="A note for the token list.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "team": "payments",
                    "scope": "issue",
                    "allow_names": ["*.pay.example.com"],
                    "description": "CI pipeline of the payments service",
                }
            ]
        }
    )


class TokenOut(BaseModel):
    """A token as ``certfleet token list --format json`` shows it (never its secret)."""

    id: str
    team: str
    scope: str
    allow_names: list[str]
    description: str
    created_at: str | None
    revoked_at: str | None

    model_config = ConfigDict(json_schema_extra={"examples": [_TOKEN_EXAMPLE]})


class TokenCreated(TokenOut):
    token: str = Field(description="The bearer token, shown this once: only its hash is stored.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_TOKEN_EXAMPLE, "token": "cf_3f9a0c1b2d4e_<secret>"}]}
    )


@router.post("", status_code=201, response_model=TokenCreated, summary="Create an API token")
async def create_token(
    body: TokenCreate, principal: CurrentPrincipal, platform: PlatformDep, response: Response
) -> TokenCreated:
    """Mint a token (admin). The answer carries the secret once; it is never listed again."""
    require_admin(principal)
    minted = await run_in_threadpool(
        lambda: platform.tokens.create(
            body.team,
            Scope.parse(body.scope),
            body.allow_names,
            actor=principal.name,
            description=body.description,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Location"] = f"{router.prefix}/{minted.record.id}"
    return TokenCreated(**minted.record.to_dict(), token=minted.token)


@router.get("", response_model=list[TokenOut], summary="List API tokens")
async def list_tokens(principal: CurrentPrincipal, platform: PlatformDep) -> list[TokenOut]:
    """Every token, revoked ones included, without secrets (admin)."""
    require_admin(principal)
    tokens = await run_in_threadpool(platform.tokens.list)
    return [TokenOut.model_validate(t.to_dict()) for t in tokens]


@router.delete("/{token_id}", status_code=204, response_class=Response, summary="Revoke an API token")
async def revoke_token(
    token_id: Annotated[str, Path(max_length=64, description="The id (the part after 'cf_').")],
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> Response:
    """Revoke at once (admin): the next request with it is 401. 404 for no active token."""
    require_admin(principal)
    await run_in_threadpool(lambda: platform.tokens.revoke(token_id, actor=principal.name))
    return Response(status_code=204)

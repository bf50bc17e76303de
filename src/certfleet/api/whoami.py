"""``GET /api/v1/whoami``: who the bearer token is, for ``certfleet login`` (which checks a
token before saving it) and ``certfleet status``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Principal
from certfleet.api._auth import CurrentPrincipal
from certfleet.api._problems import PROBLEM_RESPONSES

__all__ = ["WhoAmI", "router"]

router = APIRouter(prefix="/api/v1", tags=["tokens"], responses=PROBLEM_RESPONSES)


class WhoAmI(BaseModel):
    """The caller as the server sees it: every scope and name check of the API uses these."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "token:3f2a9c1b7e04",
                    "team": "web",
                    "scope": "issue",
                    "allow_names": ["*.example.test"],
                }
            ]
        }
    )

    name: str = Field(description="'token:<id>' for an API token.")
    team: str | None = Field(description="The team the token acts for.")
    scope: str = Field(description="read, issue, revoke or admin (admin includes everything).")
    allow_names: list[str] = Field(description="Name patterns an issue or revoke token may act on.")

    @classmethod
    def of(cls, principal: Principal) -> WhoAmI:
        return cls(
            name=principal.name,
            team=principal.team,
            scope=principal.scope.value,
            allow_names=[p.text for p in principal.allow_names],
        )


@router.get("/whoami", response_model=WhoAmI, summary="The token's name, team, scope and name patterns")
def whoami(principal: CurrentPrincipal) -> WhoAmI:
    """Any valid token may ask (no scope needed beyond being valid); an invalid or revoked one
    gets 401."""
    return WhoAmI.of(principal)

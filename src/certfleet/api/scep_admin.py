"""Operating SCEP enrolment over HTTP (admin): challenge passwords (the password shown once,
never listed) and the manual approval of held requests, with the same
:class:`~certfleet.services.scep.ScepService` calls as ``certfleet scep``. Admin only: a
challenge lets whoever holds it enrol devices for a team."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.api._admin import StrictBody, require_admin
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/scep", tags=["scep-admin"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]
TransactionId = Annotated[
    str, Path(max_length=512, description="The request's transactionID (see GET /api/v1/scep/pending).")
]

_CHALLENGE_EXAMPLE: dict[str, Any] = {
    "id": "5d1e0c9b8a7f",
    "team": "printers",
    "profile": "tls-client",
    "allow_names": ["*.lab.example.test"],
    "uses_left": 3,
    "manual_approval": True,
    "expires_at": "2026-12-10T10:00:00+00:00",
    "created_at": "2026-12-03T10:00:00+00:00",
}
_TRANSACTION_EXAMPLE: dict[str, Any] = {
    "transaction_id": "3f9a0c1b2d4e5f60",
    "status": "PENDING",
    "team": "printers",
    "profile": "tls-client",
    "challenge_id": "5d1e0c9b8a7f",
    "renews_serial": None,
    "serial": None,
    "created_at": "2026-12-03T10:05:00+00:00",
    "updated_at": "2026-12-03T10:05:00+00:00",
}


class ChallengeCreate(StrictBody):
    team: str = Field(min_length=1, max_length=100, description="Team the enrolled certificates belong to.")
    profile: str = Field(default="tls-client", max_length=100, description="Certificate profile.")
    names: list[Annotated[str, Field(max_length=253)]] = Field(
        default_factory=list,
        max_length=100,
        description="Name patterns the CSR may ask for (*.x, **.x, CIDR); none: any name.",
    )
    uses: int = Field(default=1, le=1_000_000, description="Enrolments this challenge allows (at least 1).")
    ttl_seconds: int = Field(
        default=7 * 86400, le=100 * 365 * 86400, description="Lifetime in seconds (positive)."
    )
    manual_approval: bool = Field(default=False, description="Hold requests PENDING until approved.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "team": "printers",
                    "names": ["*.lab.example.test"],
                    "uses": 3,
                    "ttl_seconds": 43200,
                    "manual_approval": True,
                }
            ]
        }
    )


class ChallengeOut(BaseModel):
    """A challenge as ``certfleet scep challenge list --format json`` shows it (never its secret)."""

    id: str
    team: str
    profile: str
    allow_names: list[str]
    uses_left: int
    manual_approval: bool
    expires_at: str
    created_at: str

    model_config = ConfigDict(json_schema_extra={"examples": [_CHALLENGE_EXAMPLE]})


class ChallengeCreated(ChallengeOut):
    password: str = Field(description="The challenge password, shown this once: only its hash is stored.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_CHALLENGE_EXAMPLE, "password": "5d1e0c9b8a7f-<secret>"}]}
    )


class TransactionOut(BaseModel):
    """A SCEP transaction as ``certfleet scep pending --format json`` shows it."""

    transaction_id: str
    status: str
    team: str | None
    profile: str
    challenge_id: str | None
    renews_serial: str | None
    serial: str | None
    created_at: str
    updated_at: str

    model_config = ConfigDict(json_schema_extra={"examples": [_TRANSACTION_EXAMPLE]})


@router.post(
    "/challenges", status_code=201, response_model=ChallengeCreated, summary="Create a SCEP challenge"
)
async def create_challenge(
    body: ChallengeCreate, principal: CurrentPrincipal, platform: PlatformDep, response: Response
) -> ChallengeCreated:
    """Mint a challenge password (admin). The answer carries it once; it is never listed."""
    require_admin(principal)
    minted = await run_in_threadpool(
        lambda: platform.scep.create_challenge(
            body.team,
            actor=principal.name,
            profile=body.profile,
            names=body.names,
            uses=body.uses,
            ttl=dt.timedelta(seconds=body.ttl_seconds),
            manual_approval=body.manual_approval,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return ChallengeCreated(**minted.challenge.to_dict(), password=minted.password)


@router.get("/challenges", response_model=list[ChallengeOut], summary="List SCEP challenges")
async def list_challenges(principal: CurrentPrincipal, platform: PlatformDep) -> list[ChallengeOut]:
    """Every challenge, without secrets (admin)."""
    require_admin(principal)
    challenges = await run_in_threadpool(platform.scep.challenges)
    return [ChallengeOut.model_validate(c.to_dict()) for c in challenges]


@router.get("/pending", response_model=list[TransactionOut], summary="List SCEP requests awaiting approval")
async def list_pending(principal: CurrentPrincipal, platform: PlatformDep) -> list[TransactionOut]:
    """Requests held by a manual-approval challenge (admin)."""
    require_admin(principal)
    transactions = await run_in_threadpool(platform.scep.pending)
    return [TransactionOut.model_validate(t.to_dict()) for t in transactions]


@router.post(
    "/pending/{transaction_id:path}/approve",
    response_model=TransactionOut,
    summary="Approve a pending SCEP request",
)
async def approve(
    transaction_id: TransactionId, principal: CurrentPrincipal, platform: PlatformDep
) -> TransactionOut:
    """Issue the held request (admin): the client's next poll receives the certificate. 404
    for an unknown transaction, 409 for one no longer pending."""
    require_admin(principal)
    transaction = await run_in_threadpool(lambda: platform.scep.approve(transaction_id, actor=principal.name))
    return TransactionOut.model_validate(transaction.to_dict())


@router.post(
    "/pending/{transaction_id:path}/reject",
    status_code=204,
    response_class=Response,
    summary="Reject a pending SCEP request",
)
async def reject(
    transaction_id: TransactionId, principal: CurrentPrincipal, platform: PlatformDep
) -> Response:
    """Refuse the held request (admin): the client's next poll receives a failure."""
    require_admin(principal)
    await run_in_threadpool(lambda: platform.scep.reject(transaction_id, actor=principal.name))
    return Response(status_code=204)

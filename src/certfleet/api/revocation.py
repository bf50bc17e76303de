"""Revocation over HTTP: the REST revoke call. The CRLs and the OCSP responder are served by
the plain-HTTP listener (:mod:`certfleet.api.public`); their maintenance is a scheduler job
(:mod:`certfleet.services.background_jobs`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Body, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Principal
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.api._schemas import CertificateOut
from certfleet.revocation import RevocationReason

__all__ = ["RevokeRequest", "revoke_as", "router"]

router = APIRouter(prefix="/api/v1/certificates", tags=["revocation"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        default="unspecified",
        description="RFC 5280 CRLReason: " + ", ".join(r.value for r in RevocationReason) + ".",
    )
    invalidity_date: dt.datetime | None = Field(
        default=None, description="When the key was (suspected to be) compromised (RFC 5280 5.3.2)."
    )


@router.post("/{serial}/revoke", response_model=CertificateOut)
async def revoke_certificate(
    serial: str,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    body: Annotated[RevokeRequest | None, Body()] = None,
) -> CertificateOut:
    """Revoke one of your team's certificates (admin: any). Needs the revoke scope, and the
    token's name patterns must cover every name of the certificate, as for issuing; an
    agent's identity certificate only an admin (or the agent) may revoke. A refusal is 403
    and changes nothing; another team's certificate is 404; revoking twice is 409. The CRL
    and the OCSP responder reflect it at once; ``keyCompromise`` also blocks the key."""
    return await revoke_as(platform, principal, serial, body)


async def revoke_as(
    platform: Platform, principal: Principal, serial: str, body: RevokeRequest | None
) -> CertificateOut:
    """Revoke ``serial`` on behalf of ``principal`` (a token or an agent's identity): the one
    revocation call of the REST API, so both routes obey the same scope and name rules."""
    request = body or RevokeRequest()
    record = await run_in_threadpool(
        platform.revocation.revoke,
        serial,
        request.reason,
        actor=principal.name,
        principal=principal,
        invalidity_date=request.invalidity_date,
    )
    return CertificateOut.model_validate(record.to_dict(platform.clock.now()))

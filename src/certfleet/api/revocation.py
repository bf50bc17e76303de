"""Revocation over HTTP: the REST revoke call. The CRLs and the OCSP responder are served by
the plain-HTTP listener (:mod:`certfleet.api.public`); their maintenance is a scheduler job
(:mod:`certfleet.services.background_jobs`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Principal
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.api._schemas import CertificateOut
from certfleet.errors import Forbidden, InvalidInput
from certfleet.revocation import RevocationReason
from certfleet.x509 import load_certificates

__all__ = ["RevocationIn", "RevocationOut", "RevokeRequest", "revocations_router", "revoke_as", "router"]

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


revocations_router = APIRouter(prefix="/api/v1", tags=["revocation"], responses=PROBLEM_RESPONSES)
_MAX_CERTIFICATE_PEM_CHARS = 64 * 1024


class RevocationIn(RevokeRequest):
    """What ``certfleet revoke`` sends: the serial, and optionally the issuing CA and the
    certificate itself (admin only) to revoke a certificate the inventory lost."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"serial": "5b0a757dc95b12b4e23d9625e3dc73b0", "reason": "keyCompromise"}]
        },
    )

    serial: str = Field(min_length=1, max_length=64, description="Hex, colons allowed.")
    issuer_ca_id: str | None = Field(default=None, max_length=64, description="The CA that issued it.")
    certificate_pem: str | None = Field(
        default=None,
        max_length=_MAX_CERTIFICATE_PEM_CHARS,
        description="The certificate (admin only): revokes it, and blocks its key on keyCompromise, "
        "even if the inventory lost it.",
    )


class RevocationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "serial": "5b0a757dc95b12b4e23d9625e3dc73b0",
                    "issuer_ca_id": "8378b63c37ed8cf2",
                    "revoked_at": "2026-12-03T10:57:30Z",
                    "reason": "keyCompromise",
                    "invalidity_date": None,
                    "key_blocked": True,
                    "certificate": None,
                }
            ]
        }
    )

    serial: str
    issuer_ca_id: str
    revoked_at: str
    reason: str
    invalidity_date: str | None
    key_blocked: bool
    certificate: CertificateOut | None = Field(description="Null for a serial not in the inventory.")


def _revoke_serial(platform: Platform, principal: Principal, body: RevocationIn) -> dict[str, Any]:
    certificate = None
    if body.certificate_pem is not None:
        if not principal.is_admin:
            raise Forbidden("only an admin token may revoke by certificate (for one the inventory lost)")
        certificates = load_certificates(body.certificate_pem.encode(), source="certificate_pem")
        if len(certificates) != 1:
            raise InvalidInput(f"certificate_pem holds {len(certificates)} certificates; give exactly one")
        certificate = certificates[0]
    outcome = platform.revocation.revoke_serial(
        body.serial,
        body.reason,
        actor=principal.name,
        # An admin revokes as the CLI beside the data does (a serial the inventory lost too);
        # any other token under its scope, team and name patterns, inventory certificates only.
        principal=None if principal.is_admin else principal,
        invalidity_date=body.invalidity_date,
        issuer_ca_id=body.issuer_ca_id,
        certificate=certificate,
    )
    return outcome.to_dict(platform.clock.now())


@revocations_router.post(
    "/revocations", response_model=RevocationOut, summary="Revoke a serial (what certfleet revoke does)"
)
async def revoke_serial(
    body: RevocationIn, principal: CurrentPrincipal, platform: PlatformDep
) -> dict[str, Any]:
    """Revoke by serial as ``certfleet revoke`` does. An admin token may also revoke a serial
    the inventory does not hold (naming ``issuer_ca_id``, or giving ``certificate_pem``); any
    other token needs the revoke scope and names its patterns cover, as
    ``POST /api/v1/certificates/{serial}/revoke``. 409 when already revoked."""
    return await run_in_threadpool(_revoke_serial, platform, principal, body)

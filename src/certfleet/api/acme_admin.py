"""Operating the ACME server over HTTP: external account binding keys (RFC 8555 section
7.3.4) and "renew now" ARI overrides (RFC 9773), as ``certfleet acme eab ...`` and
``certfleet acme renew-now`` do, through the same :class:`~certfleet.protocols.acme.AcmeServer`
methods. Admin tokens only: an EAB key lets whoever holds it open accounts for a team, and an
override makes clients across the fleet renew."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Principal, Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.inventory import CertificateQuery

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/acme", tags=["acme-admin"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]

_KEY_EXAMPLE: dict[str, Any] = {
    "kid": "kid-5d1e0c9b8a7f6e54",
    "team": "payments",
    "allow_names": ["**.pay.example.test"],
    "description": "payments CI",
    "created_at": "2026-06-01T09:30:00Z",
    "account_id": None,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EabKeyIn(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"team": "payments", "allow_names": ["**.pay.example.test"], "description": "payments CI"}
            ]
        },
    )

    team: str = Field(min_length=1, max_length=100, description="Team bound accounts issue under.")
    allow_names: list[Annotated[str, Field(max_length=300)]] = Field(
        default_factory=list, max_length=100, description="Name patterns (*.x, **.x, CIDR) they may order."
    )
    description: str = Field(default="", max_length=500)


class EabKeyOut(BaseModel):
    """A key as ``certfleet acme eab list --format json`` shows it: never its HMAC key."""

    model_config = ConfigDict(json_schema_extra={"examples": [_KEY_EXAMPLE]})

    kid: str
    team: str
    allow_names: list[str]
    description: str
    created_at: str
    account_id: str | None = Field(description="The account that bound it (single use).")


class EabKeyCreated(BaseModel):
    """The new key and its HMAC key (base64url), shown this once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"kid": _KEY_EXAMPLE["kid"], "hmac_key": "q2T0...base64url...", "key": _KEY_EXAMPLE}]
        }
    )

    kid: str
    hmac_key: str
    key: EabKeyOut


class RenewNowIn(_Strict):
    """Either ``serials`` or a selection (``issuer``, ``san``, ``team``, or ``all``)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"serials": ["5f1c0e2a9b"]}, {"team": "payments"}, {"all": True}]},
    )

    serials: list[Annotated[str, Field(max_length=80)]] = Field(default_factory=list, max_length=10_000)
    issuer: str | None = Field(default=None, max_length=1000, description="Issuer DN substring or CA id.")
    san: str | None = Field(default=None, max_length=300)
    team: str | None = Field(default=None, max_length=100)
    all: bool = Field(default=False, description="Every active certificate certfleet issued.")


class RenewNowOutcomeOut(BaseModel):
    """One per certificate: a bad serial never aborts the rest."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"serial": "5f1c0e2a9b", "ok": True, "detail": "renewal window moved to now"}]
        }
    )

    serial: str
    ok: bool
    detail: str


class RenewalOverrideOut(BaseModel):
    """An operator's "renew now": the ARI window served for this certificate instead of its
    default one, until cleared."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "serial": "5f1c0e2a9b",
                    "window_start": "2026-05-31T09:30:00Z",
                    "window_end": "2026-06-01T09:30:00Z",
                    "set_at": "2026-06-01T09:30:00Z",
                    "actor": "token:3f2a...",
                }
            ]
        }
    )

    serial: str
    window_start: str
    window_end: str
    set_at: str
    actor: str


def _admin(principal: Principal) -> str:
    principal.require(Scope.ADMIN)
    return principal.name


@router.get("/eab-keys", response_model=list[EabKeyOut], summary="List external account keys (admin)")
async def list_eab_keys(principal: CurrentPrincipal, platform: PlatformDep) -> list[dict[str, Any]]:
    _admin(principal)
    return [k.to_dict() for k in await run_in_threadpool(platform.acme.eab_keys)]


@router.post(
    "/eab-keys",
    response_model=EabKeyCreated,
    status_code=201,
    summary="Create an external account key (admin)",
)
async def create_eab_key(
    body: EabKeyIn, principal: CurrentPrincipal, platform: PlatformDep, response: Response
) -> dict[str, Any]:
    """A single-use key: its HMAC key is in this answer and nowhere else afterwards."""
    actor = _admin(principal)
    minted = await run_in_threadpool(
        lambda: platform.acme.create_eab_key(
            body.team, body.allow_names, actor=actor, description=body.description
        )
    )
    response.headers["Location"] = f"{router.prefix}/eab-keys/{minted.record.kid}"
    return {"kid": minted.record.kid, "hmac_key": minted.hmac_key_b64, "key": minted.record.to_dict()}


@router.delete(
    "/eab-keys/{kid}", response_model=EabKeyOut, summary="Revoke an unused external account key (admin)"
)
async def revoke_eab_key(kid: str, principal: CurrentPrincipal, platform: PlatformDep) -> dict[str, Any]:
    """No account can bind it any more; 409 when one already has (deactivate that account)."""
    actor = _admin(principal)
    return (await run_in_threadpool(lambda: platform.acme.revoke_eab_key(kid, actor=actor))).to_dict()


@router.post(
    "/renewal-overrides",
    response_model=list[RenewNowOutcomeOut],
    summary="Renew now: move ARI windows to now (admin)",
)
async def renew_now(
    body: RenewNowIn, principal: CurrentPrincipal, platform: PlatformDep
) -> list[dict[str, Any]]:
    """ARI clients (certbot, lego, ...) renew these certificates at their next check."""
    actor = _admin(principal)
    selected = any((body.issuer, body.san, body.team))
    query = CertificateQuery(issuer=body.issuer, san=body.san, team=body.team) if selected else None
    outcomes = await run_in_threadpool(
        lambda: platform.acme.renew_now_selected(body.serials, query, every=body.all, actor=actor)
    )
    return [dataclasses.asdict(o) for o in outcomes]


@router.get(
    "/renewal-overrides", response_model=list[RenewalOverrideOut], summary="List renew-now overrides (admin)"
)
async def list_renewal_overrides(principal: CurrentPrincipal, platform: PlatformDep) -> list[dict[str, Any]]:
    _admin(principal)
    return [o.to_dict() for o in await run_in_threadpool(platform.acme.renewal_overrides)]


@router.delete(
    "/renewal-overrides/{serial}",
    response_model=RenewalOverrideOut,
    summary="Clear a renew-now override (admin)",
)
async def clear_renewal_override(
    serial: str, principal: CurrentPrincipal, platform: PlatformDep
) -> dict[str, Any]:
    """The certificate's ARI window is its default one again."""
    actor = _admin(principal)
    return (
        await run_in_threadpool(lambda: platform.acme.clear_renewal_override(serial, actor=actor))
    ).to_dict()

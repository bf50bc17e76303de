"""Renewal and rotation over HTTP: a certificate's successor for its key holder, renewal job
state, rotation campaigns. The background jobs are :mod:`certfleet.services.background_jobs`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Principal, Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.api._schemas import CertificateOut
from certfleet.errors import Forbidden, InvalidInput, NotFound
from certfleet.inventory import MAX_PAGE_SIZE, CertificateRecord, decode_cursor, encode_cursor
from certfleet.lifecycle.campaigns import CampaignRequest, ItemState
from certfleet.lifecycle.planning import parse_duration
from certfleet.lifecycle.selection import Selection
from certfleet.x509 import KeyType, to_pem

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["lifecycle"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]
_MAX_CSR_CHARS = 64 * 1024


class CertificateWithPem(BaseModel):
    certificate: CertificateOut
    certificate_pem: str
    chain_pem: str
    fullchain_pem: str


class SuccessorOut(CertificateWithPem):
    """The newest certificate replacing the one asked about; ``lineage`` lists the serials
    from that one to the newest."""

    lineage: list[str]


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    select: str = Field(min_length=1, max_length=2000, description="e.g. key=rsa-2048,issuer=<ca-id>")
    to_key_type: str | None = None
    to_ca: str | None = None
    to_profile: str | None = Field(default=None, description="Reissue under this profile and its CA.")
    revoke_old_after: str | None = Field(default=None, description="A duration such as 7d; null: never.")
    dry_run: bool = False


class CsrIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    csr: str = Field(max_length=_MAX_CSR_CHARS, description="PEM CSR for a key of the campaign's key type.")


def _admin(principal: Principal) -> None:
    principal.require(Scope.READ)
    if not principal.is_admin:
        raise Forbidden("only an admin token sees fleet-wide renewal and campaign state")


def _with_pem(platform: Platform, record: CertificateRecord) -> dict[str, Any]:
    chain = platform.renewal.issuing_chain(record)
    return {
        "certificate": CertificateOut.model_validate(record.to_dict(platform.clock.now())),
        "certificate_pem": to_pem([record.certificate()]),
        "chain_pem": to_pem(chain),
        "fullchain_pem": to_pem((record.certificate(), *chain)),
    }


def _successor(platform: Platform, serial: str, principal: Principal) -> SuccessorOut:
    record = platform.inventory.find(serial, principal)
    lineage = platform.renewal.lineage(record)
    if len(lineage) == 1:
        raise NotFound(f"certificate {record.serial} has no successor yet")
    latest = lineage[-1]
    return SuccessorOut(lineage=[r.serial for r in lineage], **_with_pem(platform, latest))


@router.get("/certificates/{serial}/successor", response_model=SuccessorOut)
async def get_successor(serial: str, principal: CurrentPrincipal, platform: PlatformDep) -> SuccessorOut:
    """The certificate that replaced this one (the newest, if it was replaced again), with
    its chain: what a key holder fetches after a renewal or a rotation. 404 until then."""
    principal.require(Scope.READ)
    return await run_in_threadpool(_successor, platform, serial, principal)


def _job(platform: Platform, serial: str, principal: Principal) -> dict[str, Any]:
    record = platform.inventory.find(serial, principal)
    assert record.id is not None
    job = platform.renewal.job(record.id)
    if job is None:
        raise NotFound(f"certificate {record.serial} has no renewal job (not managed, or not planned yet)")
    return job.to_dict()


@router.get("/lifecycle/renewals/{serial}")
async def get_renewal(serial: str, principal: CurrentPrincipal, platform: PlatformDep) -> dict[str, Any]:
    """A certificate's renewal job: when it renews, attempts, and the last failure's reason."""
    principal.require(Scope.READ)
    return await run_in_threadpool(_job, platform, serial, principal)


@router.get("/lifecycle/renewals")
async def renewal_summary(principal: CurrentPrincipal, platform: PlatformDep) -> dict[str, Any]:
    """Renewal jobs per state and those in backoff with their reasons (admin)."""
    _admin(principal)
    counts, failing = await run_in_threadpool(platform.renewal.summary)
    return {"jobs": counts, "failing": [j.to_dict() for j in failing]}


@router.get("/lifecycle/campaigns")
async def list_campaigns(principal: CurrentPrincipal, platform: PlatformDep) -> list[dict[str, Any]]:
    _admin(principal)
    return [r.to_dict() for r in await run_in_threadpool(platform.rotation.list)]


def _create(platform: Platform, body: CampaignIn, principal: Principal) -> tuple[int, Any]:
    request = CampaignRequest(
        Selection.parse(body.select),
        to_key_type=KeyType.parse(body.to_key_type) if body.to_key_type else None,
        to_ca=body.to_ca,
        to_profile=body.to_profile,
        revoke_old_after=parse_duration(body.revoke_old_after) if body.revoke_old_after else None,
    )
    if body.dry_run:
        return 200, {"dry_run": True, "items": [p.to_dict() for p in platform.rotation.preview(request)]}
    campaign = platform.rotation.create(request, actor=principal.name)
    return 201, platform.rotation.report(campaign.id).to_dict()


@router.post("/lifecycle/campaigns")
async def create_campaign(
    body: CampaignIn, principal: CurrentPrincipal, platform: PlatformDep, response: Response
) -> dict[str, Any]:
    """Create a campaign (the server works it in the background; keys certfleet would have to
    generate are only possible from the CLI, ``--generate-keys``). ``dry_run`` lists what it
    would do."""
    _admin(principal)
    principal.require(Scope.ADMIN)
    status, payload = await run_in_threadpool(_create, platform, body, principal)
    response.status_code = status
    if status == 201:
        response.headers["Location"] = f"{router.prefix}/lifecycle/campaigns/{payload['id']}"
    result: dict[str, Any] = payload
    return result


@router.get("/lifecycle/campaigns/{campaign_id}")
async def get_campaign(
    campaign_id: str, principal: CurrentPrincipal, platform: PlatformDep
) -> dict[str, Any]:
    _admin(principal)
    return (await run_in_threadpool(platform.rotation.report, campaign_id)).to_dict()


@router.get("/lifecycle/campaigns/{campaign_id}/items")
async def campaign_items(
    campaign_id: str,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    state: Annotated[ItemState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    cursor: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """The campaign's certificates with their state and milestones, by keyset pages."""
    _admin(principal)
    after = decode_cursor(cursor) if cursor else 0
    if after > 2**63 - 1:
        raise InvalidInput("malformed pagination cursor")
    campaign = await run_in_threadpool(platform.rotation.get, campaign_id)
    items = await run_in_threadpool(
        lambda: platform.rotation.items(campaign_id, after_id=after, limit=limit, state=state)
    )
    more = len(items) == limit
    return {
        # with the campaign: what each item waits for and since when (as `rotate status`)
        "items": [i.to_dict(campaign) for i in items],
        "next_cursor": encode_cursor(items[-1].certificate_id) if more else None,
    }


@router.post("/lifecycle/campaigns/{campaign_id}/items/{serial}/csr", response_model=CertificateWithPem)
async def submit_campaign_csr(
    campaign_id: str, serial: str, body: CsrIn, principal: CurrentPrincipal, platform: PlatformDep
) -> CertificateWithPem:
    """The key holder's new key for a certificate the campaign re-keys: the replacement is
    issued for the old certificate's names, profile and team."""
    record = await run_in_threadpool(
        lambda: platform.rotation.submit_csr(
            campaign_id, serial, body.csr.encode(), actor=principal.name, principal=principal
        )
    )
    return CertificateWithPem(**_with_pem(platform, record))


@router.post("/lifecycle/campaigns/{campaign_id}/items/{serial}/deployed")
async def report_deployed(
    campaign_id: str, serial: str, principal: CurrentPrincipal, platform: PlatformDep
) -> dict[str, Any]:
    """The key holder reports the replacement deployed."""
    principal.require(Scope.ISSUE)
    item = await run_in_threadpool(
        lambda: platform.rotation.mark_deployed(campaign_id, serial, principal=principal)
    )
    return item.to_dict()

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from certfleet.access import Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._schemas import CertificateOut, CertificatePage, IssueRequest, IssueResponse
from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.errors import Forbidden, InvalidInput
from certfleet.inventory import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CertificateQuery,
    Status,
    decode_cursor,
    encode_cursor,
)
from certfleet.x509 import KeyType, csr_public_key, generate_private_key, load_csr, names_from_csr, to_pem

router = APIRouter(prefix="/api/v1/certificates", tags=["certificates"])
PlatformDep = Annotated[Platform, Depends(get_platform)]


def _out(record_dict: dict[str, Any]) -> CertificateOut:
    return CertificateOut.model_validate(record_dict)


@router.post("", status_code=201, response_model=IssueResponse)
async def issue_certificate(
    body: IssueRequest, principal: CurrentPrincipal, platform: PlatformDep
) -> IssueResponse:
    """Issue a certificate for a CSR, or for a key the server generates (returned once)."""
    principal.require(Scope.ISSUE)
    if (body.csr is None) == (body.key_type is None):
        raise InvalidInput("give exactly one of csr or key_type")
    names = list(body.sans)
    common_name = body.common_name
    private_key = None
    if body.csr is not None:
        csr = load_csr(body.csr.encode())
        public_key = csr_public_key(csr)
        if not names and common_name is None:
            common_name, names = names_from_csr(csr)
    else:
        assert body.key_type is not None
        private_key = generate_private_key(KeyType.parse(body.key_type))
        public_key = private_key.public_key()
    request = IssuanceRequest(body.profile, public_key, tuple(names), common_name, body.validity_days)
    result = await run_in_threadpool(
        platform.issuance.issue,
        request,
        actor=principal.name,
        team=principal.team,
        principal=principal,
        tags=tuple(body.tags),
        private_key=private_key,
    )
    key_pem = result.private_key_pem()
    issued = result.issued
    return IssueResponse(
        certificate=_out(result.record.to_dict(platform.clock.now())),
        certificate_pem=to_pem([issued.certificate]),
        chain_pem=to_pem(issued.chain),
        fullchain_pem=to_pem(issued.fullchain),
        private_key_pem=key_pem.decode() if key_pem else None,
    )


@router.get("", response_model=CertificatePage)
async def list_certificates(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    expiring: Annotated[int | None, Query(ge=0, description="Expiring within DAYS.")] = None,
    status: Status | None = None,
    issuer: str | None = None,
    san: str | None = None,
    team: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> CertificatePage:
    """List certificates with keyset pagination: pass ``next_cursor`` back as ``cursor``."""
    principal.require(Scope.READ)
    if not principal.is_admin:
        if team is not None and team != principal.team:
            raise Forbidden("this token may read only its own team's certificates")
        team = principal.team
    query = CertificateQuery(
        expiring_within=dt.timedelta(days=expiring) if expiring is not None else None,
        status=status,
        issuer=issuer,
        san=san,
        team=team,
        limit=limit,
        after_id=decode_cursor(cursor) if cursor else None,
    )
    records = await run_in_threadpool(platform.inventory.query, query)
    now = platform.clock.now()
    next_cursor = encode_cursor(records[-1].id) if len(records) == limit and records[-1].id else None
    return CertificatePage(items=[_out(r.to_dict(now)) for r in records], next_cursor=next_cursor)


@router.get("/{serial}", response_model=CertificateOut)
async def get_certificate(serial: str, principal: CurrentPrincipal, platform: PlatformDep) -> CertificateOut:
    """One certificate by serial (hex) or SHA-256 fingerprint; another team's is 404."""
    principal.require(Scope.READ)
    record = await run_in_threadpool(platform.inventory.find, serial, principal)
    return _out(record.to_dict(platform.clock.now()))

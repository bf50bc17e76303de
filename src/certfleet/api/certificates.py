"""``/api/v1/certificates``: issue, list with keyset pagination, and show one."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from typing import Annotated

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from certfleet.access import Principal, Scope
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.api._schemas import CertificateOut, CertificatePage, IssueRequest, IssueResponse
from certfleet.ca import IssuanceRequest
from certfleet.errors import Forbidden, InvalidInput
from certfleet.inventory import (
    DEFAULT_PAGE_SIZE,
    MAX_EXPIRING_DAYS,
    MAX_PAGE_SIZE,
    CertificateQuery,
    CertificateRecord,
    Status,
    decode_cursor,
    encode_cursor,
)
from certfleet.services.issuance import IssuanceResult, check_caller_tags
from certfleet.x509 import (
    KeyType,
    MalformedInput,
    csr_public_key,
    generate_private_key,
    load_csr,
    names_from_csr,
    to_pem,
)

router = APIRouter(prefix="/api/v1/certificates", tags=["certificates"], responses=PROBLEM_RESPONSES)
PlatformDep = Annotated[Platform, Depends(get_platform)]

# Row ids are 64-bit signed integers in both databases; a larger id in a forged cursor would
# overflow the driver instead of simply matching nothing.
_MAX_ROW_ID = 2**63 - 1
# "Expiring within" beyond a century means "all active": a bound keeps now + delta in range.


def _out(record: CertificateRecord, platform: Platform) -> CertificateOut:
    return CertificateOut.model_validate(record.to_dict(platform.clock.now()))


def _request_from_csr(body: IssueRequest, csr_pem: str) -> IssuanceRequest:
    csr = load_csr(csr_pem.encode())
    public_key: CertificatePublicKeyTypes = csr_public_key(csr)
    names = list(body.sans)
    common_name = body.common_name
    if not names:
        try:
            csr_common_name, names = names_from_csr(csr)
        except ValueError as exc:  # a CSR extension that does not parse
            raise MalformedInput(f"malformed CSR extension: {exc}") from exc
        common_name = common_name if common_name is not None else csr_common_name
    return IssuanceRequest(body.profile, public_key, tuple(names), common_name, body.validity_days)


def _issue(platform: Platform, body: IssueRequest, principal: Principal) -> IssuanceResult:
    """Parse, generate and sign off the event loop: RSA key generation takes a while."""
    private_key: CertificateIssuerPrivateKeyTypes | None = None
    if body.csr is not None:
        request = _request_from_csr(body, body.csr)
    else:
        assert body.key_type is not None
        private_key = generate_private_key(KeyType.parse(body.key_type))
        request = IssuanceRequest(
            body.profile, private_key.public_key(), tuple(body.sans), body.common_name, body.validity_days
        )
    if body.team is not None and body.team != principal.team and not principal.is_admin:
        raise Forbidden("this token may issue only for its own team")
    return platform.issuance.issue(
        request,
        actor=principal.name,
        team=body.team if body.team is not None else principal.team,
        principal=principal,
        tags=tuple(body.tags),
        private_key=private_key,
    )


@router.post("", status_code=201, response_model=IssueResponse)
def issue_certificate(body: IssueRequest, principal: CurrentPrincipal, request: Request) -> Response:
    """Issue a certificate for a CSR, or for a key the server generates (returned once).

    An ``issue`` token may ask only for names its patterns allow; the certificate belongs to
    the token's team.
    """
    # A plain (sync) route: FastAPI runs it in the thread pool once, off the event loop, for
    # the CSR parsing, key generation (RSA takes a while), signing and the database. The
    # platform is read from the app state here rather than through a sync dependency, which
    # would cost one more thread hop per request.
    platform: Platform = request.app.state.platform
    principal.require(Scope.ISSUE)
    if (body.csr is None) == (body.key_type is None):
        raise InvalidInput("give exactly one of csr or key_type")
    check_caller_tags(body.tags)  # certfleet-server and agent:<host> are certfleet's own
    result = _issue(platform, body, principal)
    key_pem = result.private_key_pem()
    issued = result.issued
    # The IssueResponse shape (declared above for the OpenAPI document) written directly: the
    # record's JSON form is what CertificateOut holds, so validating it again through pydantic
    # on every certificate would only cost time.
    document = {
        "certificate": result.record.to_dict(platform.clock.now()),
        "certificate_pem": to_pem([issued.certificate]),
        "chain_pem": _chain_pem(issued.chain),
        "fullchain_pem": to_pem(issued.fullchain),
        "private_key_pem": key_pem.decode() if key_pem else None,
    }
    return Response(
        json.dumps(document, separators=(",", ":")).encode(),
        status_code=201,
        media_type="application/json",
        headers={
            "Location": f"{router.prefix}/{result.record.serial}",
            # The body may hold a private key: no cache may keep it (RFC 9111 section 5.2.2.5).
            "Cache-Control": "no-store",
        },
    )


@functools.lru_cache(maxsize=8)
def _chain_pem(chain: tuple[x509.Certificate, ...]) -> str:
    """The issuing chain's PEM, the same for every certificate of one issuing CA."""
    return to_pem(chain)


def _cursor_id(cursor: str) -> int:
    after_id = decode_cursor(cursor)
    if after_id > _MAX_ROW_ID:
        raise InvalidInput("malformed pagination cursor")
    return after_id


def _page(platform: Platform, query: CertificateQuery) -> tuple[list[CertificateRecord], int | None]:
    """One page and the id to continue after, or None when this page is the last.

    A full page is followed by a one-row probe so the last page never hands out a cursor
    that leads to an empty page.
    """
    records = list(platform.inventory.query(query))
    if query.limit is None or len(records) < query.limit or records[-1].id is None:
        return records, None
    last_id = records[-1].id
    probe = dataclasses.replace(query, limit=1, after_id=last_id)
    return records, (last_id if platform.inventory.query(probe) else None)


@router.get("", response_model=CertificatePage)
async def list_certificates(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    expiring: Annotated[
        int | None, Query(ge=0, le=MAX_EXPIRING_DAYS, description="Expiring within DAYS.")
    ] = None,
    status: Annotated[Status | None, Query(description="Effective status.")] = None,
    issuer: Annotated[str | None, Query(description="Issuer DN substring or CA id.")] = None,
    san: Annotated[str | None, Query(description="A DNS name or IP the certificate has.")] = None,
    team: Annotated[str | None, Query(description="Owning team (admin tokens only for others).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="``next_cursor`` of the previous page.")] = None,
) -> CertificatePage:
    """List certificates, oldest first, with keyset pagination: pass ``next_cursor`` back as
    ``cursor`` with the same filters until it is null. A non-admin token sees only its team."""
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
        after_id=_cursor_id(cursor) if cursor else None,
    )
    records, next_id = await run_in_threadpool(_page, platform, query)
    return CertificatePage(
        items=[_out(r, platform) for r in records],
        next_cursor=encode_cursor(next_id) if next_id is not None else None,
    )


@router.get("/{serial}", response_model=CertificateOut)
async def get_certificate(serial: str, principal: CurrentPrincipal, platform: PlatformDep) -> CertificateOut:
    """One certificate by serial (hex) or SHA-256 fingerprint; another team's is 404."""
    principal.require(Scope.READ)
    record = await run_in_threadpool(platform.inventory.find, serial, principal)
    return _out(record, platform)

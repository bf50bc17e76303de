"""Revocation over HTTP: the REST revoke call, and on the plain-HTTP listener the CRLs and the
OCSP responder (RFC 6960 appendix A, RFC 5019). Their maintenance is a scheduler job
(:mod:`certfleet.services.background_jobs`)."""

from __future__ import annotations

import datetime as dt
import logging
from email.utils import format_datetime
from typing import Annotated

from cryptography.x509 import ocsp
from fastapi import APIRouter, Body, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from certfleet.access import Principal
from certfleet.api._auth import CurrentPrincipal, get_platform
from certfleet.api._ports import Platform
from certfleet.api._problems import PROBLEM_RESPONSES
from certfleet.api._schemas import CertificateOut
from certfleet.errors import NotFound
from certfleet.revocation import (
    MAX_REQUEST_BYTES,
    CrlKind,
    MalformedOcspRequest,
    Published,
    RevocationReason,
    decode_get_path,
    error_response,
)

__all__ = ["RevokeRequest", "public_router", "revoke_as", "router"]

_log = logging.getLogger("certfleet.revocation")

router = APIRouter(prefix="/api/v1/certificates", tags=["revocation"], responses=PROBLEM_RESPONSES)
public_router = APIRouter(include_in_schema=False)
PlatformDep = Annotated[Platform, Depends(get_platform)]

CRL_MEDIA_TYPE = "application/pkix-crl"
OCSP_RESPONSE = "application/ocsp-response"


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


def _http_date(value: dt.datetime) -> str:
    return format_datetime(value.astimezone(dt.UTC), usegmt=True)


def _serve(document: Published, media_type: str, request: Request, now: dt.datetime) -> Response:
    """The document with RFC 5019 section 6.2 caching headers: max-age ends when a newer one
    exists (never after nextUpdate), Expires is nextUpdate, Last-Modified thisUpdate."""
    if document.this_update is None or document.next_update is None or document.refresh_at is None:
        return Response(document.der, media_type=media_type, headers={"Cache-Control": "no-store"})
    if not document.shared_cache:  # echoes this client's nonce: useless to anyone else
        return Response(document.der, media_type=media_type, headers={"Cache-Control": "private, no-store"})
    max_age = max(0, int((min(document.refresh_at, document.next_update) - now).total_seconds()))
    headers = {
        "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
        "Expires": _http_date(document.next_update),
        "Last-Modified": _http_date(document.this_update),
        "ETag": document.etag,
    }
    if document.etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(document.der, media_type=media_type, headers=headers)


@public_router.get("/crl/{name}")
def get_crl(name: str, request: Request) -> Response:
    """``/crl/{ca_id}.crl`` (the CRL distribution point) and ``/crl/{ca_id}-delta.crl``
    (the Freshest CRL pointer of the complete CRL), DER."""
    platform = get_platform(request)
    if name.endswith("-delta.crl"):
        ca_id, kind = name.removesuffix("-delta.crl"), CrlKind.DELTA
    elif name.endswith(".crl"):
        ca_id, kind = name.removesuffix(".crl"), CrlKind.FULL
    else:
        raise NotFound(f"no CRL {name!r}")
    document = platform.revocation.crl(ca_id, kind)
    return _serve(document, CRL_MEDIA_TYPE, request, platform.clock.now())


def _answer(platform: Platform, request_der: bytes, request: Request) -> Response:
    try:
        document = platform.revocation.ocsp(request_der)
    except Exception as exc:  # noqa: BLE001 - the outermost handler: an OCSP error, not a 500 page
        _log.error("OCSP request failed: %s: %s", type(exc).__name__, exc)
        document = Published(error_response(ocsp.OCSPResponseStatus.INTERNAL_ERROR))
    return _serve(document, OCSP_RESPONSE, request, platform.clock.now())


def _malformed() -> Response:
    # RFC 6960 appendix A.1: errors are OCSP responses too, sent with HTTP 200.
    return Response(
        error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        media_type=OCSP_RESPONSE,
        headers={"Cache-Control": "no-store"},
    )


@public_router.post("/ocsp")
@public_router.post("/ocsp/")
async def post_ocsp(request: Request) -> Response:
    """An ``application/ocsp-request`` body (RFC 6960 appendix A.1.1)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        return _malformed()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            return _malformed()
    return await run_in_threadpool(_answer, get_platform(request), bytes(body), request)


@public_router.get("/ocsp")
@public_router.get("/ocsp/")
def get_ocsp_empty() -> Response:
    return _malformed()


@public_router.get("/ocsp/{encoded:path}")
def get_ocsp(encoded: str, request: Request) -> Response:
    """``/ocsp/{url-encoded base64 of the DER request}``. The raw path is decoded here, not
    the one the framework already unquoted: ``%2F`` and ``+`` must keep their meaning."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    text = raw_path.decode("latin-1")
    marker = text.find("/ocsp/")
    try:
        request_der = decode_get_path(text[marker + len("/ocsp/") :] if marker >= 0 else encoded)
    except MalformedOcspRequest:
        return _malformed()
    return _answer(get_platform(request), request_der, request)

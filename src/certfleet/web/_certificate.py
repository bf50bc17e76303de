"""One certificate: decoded fields, chain, fingerprints, locations, findings, audit entries,
and revocation (for tokens that may revoke, exactly as ``POST .../revoke`` of the REST API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from certfleet.access import Scope
from certfleet.ca import CaCertificate
from certfleet.errors import Forbidden
from certfleet.inventory import CertificateRecord, Status
from certfleet.revocation import RevocationReason
from certfleet.services.revocation_access import authorize_revocation
from certfleet.web._decode import decode
from certfleet.web._forms import read_form
from certfleet.web._lifecycle_pages import lineage_of
from certfleet.web._render import HtmlRoute, render
from certfleet.web._sessions import User, check_csrf
from certfleet.web._state import Dashboard, current_user, dashboard

__all__ = ["router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


def chain_of(record: CertificateRecord, cas: list[CaCertificate]) -> list[CaCertificate]:
    """Issuer first, up to the root, when one of our CAs signed it."""
    by_id = {ca.id: ca for ca in cas}
    issuer = by_id.get(record.issuer_ca_id or "") or next(
        (ca for ca in cas if ca.certificate.subject.rfc4514_string() == record.issuer), None
    )
    chain: list[CaCertificate] = []
    while issuer is not None and issuer not in chain:
        chain.append(issuer)
        issuer = by_id.get(issuer.parent_id or "") if issuer.parent_id != issuer.id else None
    return chain


def can_revoke(user: User, record: CertificateRecord, cas: list[CaCertificate]) -> bool:
    """Only a certificate one of our CAs issued, still recorded as active, for a token with
    the revoke scope whose patterns cover all its names (the service checks all of it again)."""
    ours = record.issuer_ca_id is not None and any(ca.id == record.issuer_ca_id for ca in cas)
    if not (ours and record.status is Status.ACTIVE):
        return False
    try:
        authorize_revocation(user.principal, record)
    except Forbidden:
        return False
    return True


def _page(request: Request, d: Dashboard, user: User, fingerprint: str) -> Response:
    record = d.platform.inventory.find(fingerprint, user.principal)
    assert record.id is not None
    cas = d.platform.authorities.hierarchy()
    now = d.platform.clock.now()
    replaced, replaced_by = lineage_of(d.platform, record, user.principal)
    return render(
        request,
        "certificate.html",
        {
            "user": user,
            "now": now,
            "record": record,
            "status": record.effective_status(now).value,
            "decoded": decode(record.der),
            "chain": chain_of(record, cas),
            "replaced": replaced,
            "replaced_by": replaced_by,
            "public_base_url": d.platform.settings.public_base_url,
            "locations": d.platform.discovery.locations(record),
            "findings": d.queries.findings_for_certificate(record.id, record.fingerprint_sha256),
            "audit": d.queries.audit_for_certificate(record.serial, record.issuer, 50),
            "can_revoke": can_revoke(user, record, cas),
            "reasons": [r.value for r in RevocationReason],
            "revoked_now": request.query_params.get("revoked") == "1",
        },
    )


@router.get("/certificates/{fingerprint}")
def certificate(fingerprint: str, request: Request) -> Response:
    user = current_user(request)
    user.principal.require(Scope.READ)
    return _page(request, dashboard(request), user, fingerprint)


def _revoke(d: Dashboard, user: User, fingerprint: str, reason: str) -> str:
    user.principal.require(Scope.REVOKE)
    record = d.platform.inventory.find(fingerprint, user.principal)
    d.platform.revocation.revoke(
        record.serial,
        reason,
        actor=user.principal.name,
        principal=user.principal,
        issuer_ca_id=record.issuer_ca_id,
    )
    return record.fingerprint_sha256


@router.post("/certificates/{fingerprint}/revoke")
async def revoke(fingerprint: str, request: Request) -> Response:
    form = await read_form(request)
    user = await run_in_threadpool(current_user, request)
    check_csrf(user, form.get("csrf_token"))
    revoked = await run_in_threadpool(
        _revoke, dashboard(request), user, fingerprint, form.get("reason", "unspecified")
    )
    return RedirectResponse(f"/certificates/{revoked}?revoked=1", status_code=303)

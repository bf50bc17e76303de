"""EST (RFC 7030) on the HTTPS listener, under ``/.well-known/est/`` with an optional CA label
segment (``/.well-known/est/<profile>/simpleenroll``). This module only moves bytes: the
formats are :mod:`certfleet.protocols.est`, authentication and issuance
:class:`certfleet.services.est.EstService`.

Errors are one ``text/plain`` line with a 4xx status (RFC 7030 section 4.2.3), a 401 with a
``WWW-Authenticate: Basic`` challenge (section 3.2.3); a refused request records nothing but
what the issuance service audits for every path (a policy refusal).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from certfleet.api._auth import get_platform
from certfleet.api._peer_certificate import client_certificate_der
from certfleet.errors import CertfleetError, InvalidInput, Unauthenticated
from certfleet.protocols.est import (
    CERTS_ONLY,
    CSRATTRS,
    EnrolmentRequest,
    Signer,
    certs_only,
    check_channel_binding,
    csr_attributes,
    encrypted_key_package,
    parse_enrolment,
    requested_recipient,
    server_keygen_response,
)
from certfleet.services.est import EstService

__all__ = ["router"]

router = APIRouter(prefix="/.well-known/est", include_in_schema=False)
_log = logging.getLogger("certfleet.api.est")
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="certfleet EST", charset="UTF-8"'}
_BASE64 = {"Content-Transfer-Encoding": "base64"}
_PKCS10 = "application/pkcs10"


class _UnsupportedMediaType(InvalidInput, http_status=415, title="Unsupported media type"):
    pass


def _service(request: Request) -> EstService:
    return get_platform(request).est


def _outcome(status: int) -> str:
    if status == 401:
        return "unauthenticated"
    if status == 403:
        return "refused"
    return "bad_request" if 400 <= status < 500 else "error"


def _error(service: EstService, exc: CertfleetError) -> Response:
    service.count(_outcome(exc.http_status))
    headers = _CHALLENGE if isinstance(exc, Unauthenticated) else None
    return Response(f"{exc.detail}\n", status_code=exc.http_status, media_type="text/plain", headers=headers)


def _basic(request: Request) -> tuple[str, str]:
    """The Basic credentials of the request (RFC 7617)."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthenticated("EST enrolment needs HTTP Basic credentials (certfleet est credential create)")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthenticated("malformed HTTP Basic credentials") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise Unauthenticated("malformed HTTP Basic credentials")
    return username, password


def _channel(scope: Mapping[str, Any]) -> tuple[int | None, bytes | None]:
    tls = (scope.get("extensions") or {}).get("tls") or {}
    return tls.get("tls_version"), tls.get("tls_unique")


async def _body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != _PKCS10:
        raise _UnsupportedMediaType(
            f"expected Content-Type {_PKCS10} (base64 PKCS#10, RFC 7030 section 4.2.1), got {media_type!r}"
        )
    return await request.body()


async def _handle(request: Request, work: Callable[[EstService], Response]) -> Response:
    service = _service(request)
    try:
        return await run_in_threadpool(work, service)
    except CertfleetError as exc:
        return _error(service, exc)
    except Exception as exc:  # noqa: BLE001 - the outermost request handler: no traceback to the client
        # The exception's type only: its message could quote a request, never a generated key.
        _log.error("EST %s failed: %s", request.url.path, type(exc).__name__)
        service.count("error")
        return Response(
            "the server failed to handle this request\n", status_code=500, media_type="text/plain"
        )


def _issued(service: EstService, certificate: Any) -> Response:
    service.count("issued")
    return Response(certs_only([certificate]), media_type=CERTS_ONLY, headers=_BASE64)


async def _cacerts(request: Request, label: str | None = None) -> Response:
    def work(service: EstService) -> Response:
        service.check_label(label)
        return Response(certs_only(service.ca_certificates()), media_type=CERTS_ONLY, headers=_BASE64)

    return await _handle(request, work)


async def _csrattrs(request: Request, label: str | None = None) -> Response:
    def work(service: EstService) -> Response:
        service.check_label(label)
        return Response(csr_attributes(), media_type=CSRATTRS, headers=_BASE64)

    return await _handle(request, work)


@dataclass(frozen=True)
class _Enrolment:
    """What an enrolment request brings, read on the event loop before the work leaves it."""

    body: bytes
    tls_version: int | None
    tls_unique: bytes | None
    client_der: bytes | None
    basic: tuple[str, str]

    def parse(self) -> EnrolmentRequest:
        """The CSR, its signature verified and its channel binding (if any) checked."""
        parsed = parse_enrolment(self.body)
        check_channel_binding(parsed.challenge_password, self.tls_version, self.tls_unique)
        return parsed


async def _enrol(
    request: Request, work: Callable[[EstService, _Enrolment], Response], *, basic: bool
) -> Response:
    """Read the body, the Basic credentials (``basic``) or else the client certificate, and
    run ``work`` off the event loop; a missing piece is refused before anything is parsed."""
    try:
        body = await _body(request)
        client_der = client_certificate_der(request.scope)
        credentials = _basic(request) if basic else ("", "")
        if not basic and client_der is None:
            raise Unauthenticated(
                "simplereenroll needs the certificate being renewed as the TLS client certificate"
            )
    except CertfleetError as exc:
        return _error(_service(request), exc)
    version, unique = _channel(request.scope)
    enrolment = _Enrolment(body, version, unique, client_der, credentials)
    return await _handle(request, lambda service: work(service, enrolment))


async def _simpleenroll(request: Request, label: str | None = None) -> Response:
    def work(service: EstService, enrolment: _Enrolment) -> Response:
        credential = service.authenticate(*enrolment.basic)
        result = service.enrol(enrolment.parse().csr, credential, label)
        return _issued(service, result.issued.certificate)

    return await _enrol(request, work, basic=True)


async def _simplereenroll(request: Request, label: str | None = None) -> Response:
    def work(service: EstService, enrolment: _Enrolment) -> Response:
        assert enrolment.client_der is not None  # _enrol refuses a request without one
        result = service.reenrol(enrolment.parse().csr, enrolment.client_der, label)
        return _issued(service, result.issued.certificate)

    return await _enrol(request, work, basic=False)


async def _serverkeygen(request: Request, label: str | None = None) -> Response:
    def work(service: EstService, enrolment: _Enrolment) -> Response:
        credential = service.authenticate(*enrolment.basic)
        csr = enrolment.parse().csr
        # RFC 7030 section 4.4.1.2: encrypted to the client's key if the CSR names one.
        client = x509.load_der_x509_certificate(enrolment.client_der) if enrolment.client_der else None
        recipient = requested_recipient(csr, client)
        # The signer is read before issuing: a server that cannot sign issues nothing.
        signer = Signer(*service.signing_identity()) if recipient is not None else None
        result = service.server_keygen(csr, credential, label)
        assert result.private_key is not None  # serverkeygen always generates one
        encrypted = None
        if recipient is not None and signer is not None:
            encrypted = encrypted_key_package(result.private_key, recipient, signer)
        answer = server_keygen_response(result.private_key, result.issued.certificate, encrypted)
        service.count("issued")
        # The body holds a private key: no cache may keep it (RFC 9111 section 5.2.2.5).
        return Response(answer.body, media_type=answer.content_type, headers={"Cache-Control": "no-store"})

    return await _enrol(request, work, basic=True)


for _prefix in ("", "/{label}"):
    router.add_api_route(f"{_prefix}/cacerts", _cacerts, methods=["GET"])
    router.add_api_route(f"{_prefix}/csrattrs", _csrattrs, methods=["GET"])
    router.add_api_route(f"{_prefix}/simpleenroll", _simpleenroll, methods=["POST"])
    router.add_api_route(f"{_prefix}/simplereenroll", _simplereenroll, methods=["POST"])
    router.add_api_route(f"{_prefix}/serverkeygen", _serverkeygen, methods=["POST"])

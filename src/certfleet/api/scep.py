"""SCEP over HTTP (RFC 8894 section 4): ``/scep?operation=...`` on the plain-HTTP listener,
where devices enrol before they trust anything, and the same path on HTTPS.

:func:`answer` is the one translation from an HTTP request to the protocol, shared by the
bare ASGI plain-HTTP app (:mod:`certfleet.api.public`) and the FastAPI route below. The
protocol's own errors travel inside CertReps with HTTP 200; only a request that names no
operation or carries no readable message gets HTTP 400 (section 4.1), as one line of text.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from certfleet.api._auth import get_platform
from certfleet.api._ports import Platform
from certfleet.protocols.scep import MalformedMessage, ScepServer

__all__ = ["ScepAnswer", "answer", "answer_at_once", "query_parameters", "router"]

_log = logging.getLogger("certfleet.scep")
PATH = "/scep"
_TEXT = "text/plain; charset=utf-8"
# RFC 8894 sections 4.2 to 4.7.
_CA_RA_CERT = "application/x-x509-ca-ra-cert"
_NEXT_CA_CERT = "application/x-x509-next-ca-cert"
_PKI_MESSAGE = "application/x-pki-message"


@dataclass(frozen=True)
class ScepAnswer:
    status: int
    media_type: str
    body: bytes


def _bad(detail: str) -> ScepAnswer:
    return ScepAnswer(400, _TEXT, f"{detail}\n".encode())


def query_parameters(raw_query: bytes) -> dict[str, str]:
    """The query, percent-decoded but with ``+`` kept: a base64 message sent without
    encoding its ``+`` (as some clients do) must not turn it into a space."""
    parameters: dict[str, str] = {}
    for part in raw_query.decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name and name not in parameters:
            parameters[unquote(name)] = unquote(value)
    return parameters


def answer_at_once(server: ScepServer, parameters: dict[str, str]) -> ScepAnswer | None:
    """What needs no database, file or signature, for the event loop to answer without a
    thread hop: GetCACaps, and GetCACert once the RA is loaded (each enrolment of
    scepclient asks for both before its PKIOperation). None: call :func:`answer`."""
    operation = parameters.get("operation", "")
    if operation == "GetCACaps":
        return ScepAnswer(200, _TEXT, server.capabilities())
    if operation == "GetCACert" and (certificates := server.loaded_ca_certificates()) is not None:
        return ScepAnswer(200, _CA_RA_CERT, certificates)
    return None


def answer(server: ScepServer, method: str, parameters: dict[str, str], body: bytes) -> ScepAnswer:
    """Blocking (database and signatures): call it from a worker thread."""
    operation = parameters.get("operation", "")
    if operation == "GetCACaps":
        return ScepAnswer(200, _TEXT, server.capabilities())
    if operation == "GetCACert":
        return ScepAnswer(200, _CA_RA_CERT, server.ca_certificates())
    if operation == "GetNextCACert":
        return ScepAnswer(200, _NEXT_CA_CERT, server.next_ca_certificates())
    if operation != "PKIOperation":
        return _bad(f"unknown SCEP operation {operation!r}")
    if method == "POST":
        message = body
    else:
        try:
            message = base64.b64decode(parameters.get("message", ""), validate=False)
        except (binascii.Error, ValueError):
            return _bad("the message parameter is not base64")
    if not message:
        return _bad("PKIOperation needs a message")
    try:
        return ScepAnswer(200, _PKI_MESSAGE, server.pki_operation(message))
    except MalformedMessage as exc:
        _log.info("SCEP message refused: %s", exc.detail)
        return _bad(exc.detail)


router = APIRouter(tags=["scep"], include_in_schema=False)


@router.api_route(PATH, methods=["GET", "POST"])
async def scep(request: Request, platform: Annotated[Platform, Depends(get_platform)]) -> Response:
    body = await request.body() if request.method == "POST" else b""
    parameters = query_parameters(request.scope.get("query_string", b""))
    server = platform.scep_server
    result = answer_at_once(server, parameters)
    if result is None:
        result = await run_in_threadpool(answer, server, request.method, parameters, body)
    return Response(result.body, status_code=result.status, media_type=result.media_type)

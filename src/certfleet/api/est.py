"""EST (RFC 7030) on the HTTPS listener, under ``/.well-known/est/`` with an optional CA label
segment (``/.well-known/est/<profile>/simpleenroll``): a bare ASGI callable that the HTTPS app
hands every such request before Starlette sees it (as it does ``/acme/``): no routing table,
dependency injection or middleware per enrolment. This module only moves bytes: the formats are
:mod:`certfleet.protocols.est`, authentication and issuance
:class:`certfleet.services.est.EstService`.

Errors are one ``text/plain`` line with a 4xx status (RFC 7030 section 4.2.3), a 401 with a
``WWW-Authenticate: Basic`` challenge (section 3.2.3), an unknown operation 404 and a wrong
method 405 with ``Allow``; a database out of reach is 503 with ``Retry-After``. A refused
request records nothing but what the issuance service audits for every path (a policy
refusal). Bodies pass the same :class:`~certfleet.api._body_limit.BodyLimit` as the rest of
the HTTPS app. The work blocks on the database, so it runs in a thread pool of this app's own
(``loop.run_in_executor``: about a third of the CPU per hop of anyio's ``to_thread``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from certfleet.api._body_limit import BodyLimit, BodyLimits, Receive, Scope, Send
from certfleet.api._peer_certificate import client_certificate_der
from certfleet.api._ports import Platform
from certfleet.api._problems import DATABASE_RETRY_AFTER, database_outage
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

__all__ = ["PREFIX", "EstApp"]

PREFIX = "/.well-known/est/"
_log = logging.getLogger("certfleet.api.est")
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="certfleet EST", charset="UTF-8"'}
_BASE64 = {"Content-Transfer-Encoding": "base64"}
_PKCS10 = "application/pkcs10"
# An enrolment may hold a thread for a whole issuance (two committed transactions).
_THREADS = 40


class _UnsupportedMediaType(InvalidInput, http_status=415, title="Unsupported media type"):
    pass


@dataclass
class _Answer:
    status: int
    body: bytes
    media_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


def _text(status: int, line: str, headers: Mapping[str, str] | None = None) -> _Answer:
    return _Answer(status, f"{line}\n".encode(), "text/plain; charset=utf-8", headers or {})


def _outcome(status: int) -> str:
    if status == 401:
        return "unauthenticated"
    if status == 403:
        return "refused"
    return "bad_request" if 400 <= status < 500 else "error"


def _error(service: EstService, exc: CertfleetError) -> _Answer:
    service.count(_outcome(exc.http_status))
    return _text(exc.http_status, exc.detail, _CHALLENGE if isinstance(exc, Unauthenticated) else None)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def _basic(scope: Scope) -> tuple[str, str]:
    """The Basic credentials of the request (RFC 7617)."""
    scheme, _, encoded = _header(scope, b"authorization").partition(" ")
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


async def _body(scope: Scope, receive: Receive) -> bytes | None:
    """The whole body (BodyLimit, outside, bounds it), or None when the client went away."""
    media_type = _header(scope, b"content-type").split(";")[0].strip().lower()
    if media_type != _PKCS10:
        raise _UnsupportedMediaType(
            f"expected Content-Type {_PKCS10} (base64 PKCS#10, RFC 7030 section 4.2.1), got {media_type!r}"
        )
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: nobody to answer
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _issued(service: EstService, certificate: Any) -> _Answer:
    service.count("issued")
    return _Answer(200, certs_only([certificate]), CERTS_ONLY, _BASE64)


def _cacerts(service: EstService, label: str | None) -> _Answer:
    service.check_label(label)
    return _Answer(200, certs_only(service.ca_certificates()), CERTS_ONLY, _BASE64)


def _csrattrs(service: EstService, label: str | None) -> _Answer:
    service.check_label(label)
    return _Answer(200, csr_attributes(), CSRATTRS, _BASE64)


@dataclass(frozen=True)
class _Enrolment:
    """What an enrolment request brings, read on the event loop before the work leaves it."""

    label: str | None
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


def _simpleenroll(service: EstService, enrolment: _Enrolment) -> _Answer:
    credential = service.authenticate(*enrolment.basic)
    result = service.enrol(enrolment.parse().csr, credential, enrolment.label)
    return _issued(service, result.issued.certificate)


def _simplereenroll(service: EstService, enrolment: _Enrolment) -> _Answer:
    assert enrolment.client_der is not None  # EstApp refuses a request without one
    result = service.reenrol(enrolment.parse().csr, enrolment.client_der, enrolment.label)
    return _issued(service, result.issued.certificate)


def _serverkeygen(service: EstService, enrolment: _Enrolment) -> _Answer:
    credential = service.authenticate(*enrolment.basic)
    csr = enrolment.parse().csr
    # RFC 7030 section 4.4.1.2: encrypted to the client's key if the CSR names one.
    client = x509.load_der_x509_certificate(enrolment.client_der) if enrolment.client_der else None
    recipient = requested_recipient(csr, client)
    # The signer is read before issuing: a server that cannot sign issues nothing.
    signer = Signer(*service.signing_identity()) if recipient is not None else None
    result = service.server_keygen(csr, credential, enrolment.label)
    assert result.private_key is not None  # serverkeygen always generates one
    encrypted = None
    if recipient is not None and signer is not None:
        encrypted = encrypted_key_package(result.private_key, recipient, signer)
    answer = server_keygen_response(result.private_key, result.issued.certificate, encrypted)
    service.count("issued")
    # The body holds a private key: no cache may keep it (RFC 9111 section 5.2.2.5).
    return _Answer(200, answer.body, answer.content_type, {"Cache-Control": "no-store"})


# The operations (RFC 7030 section 3.2.2) by name: GET reads take the CA label; POST
# enrolments take the request (with Basic credentials, or for simplereenroll the client
# certificate being renewed).
_READS: Mapping[str, Callable[[EstService, str | None], _Answer]] = {
    "cacerts": _cacerts,
    "csrattrs": _csrattrs,
}
_ENROLMENTS: Mapping[str, tuple[Callable[[EstService, _Enrolment], _Answer], bool]] = {
    "simpleenroll": (_simpleenroll, True),
    "simplereenroll": (_simplereenroll, False),
    "serverkeygen": (_serverkeygen, True),
}


class EstApp:
    """The ASGI callable for every path below :data:`PREFIX`; see the module docstring."""

    def __init__(self, platform: Platform) -> None:
        # The EST service is looked up at the first request: building the app touches no
        # service (the OpenAPI document is built from a stand-in platform).
        self._platform = platform
        self._executor = ThreadPoolExecutor(_THREADS, thread_name_prefix="est-http")
        self._limited = BodyLimit(self._dispatch, BodyLimits(platform.settings.server.max_body_bytes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._limited(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        parts = path[path.index(PREFIX) + len(PREFIX) :].split("/")
        label, operation = (None, parts[0]) if len(parts) == 1 else (parts[0], parts[-1])
        if len(parts) > 2 or label == "" or not operation:
            await _send(send, _text(404, f"no EST operation at {path!r}"))
            return
        method: str = scope["method"]
        service: EstService = self._platform.est
        if (read := _READS.get(operation)) is not None:
            if method != "GET":
                await _send(send, _text(405, "method not allowed: use GET", {"Allow": "GET"}))
                return
            await _send(send, await self._work(scope, service, read, service, label))
        elif (enrolment := _ENROLMENTS.get(operation)) is not None:
            if method != "POST":
                await _send(send, _text(405, "method not allowed: use POST", {"Allow": "POST"}))
                return
            work, basic = enrolment
            await self._enrol(scope, receive, send, service, label, work, basic=basic)
        else:
            await _send(send, _text(404, f"no EST operation {operation!r}"))

    async def _enrol(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        service: EstService,
        label: str | None,
        work: Callable[[EstService, _Enrolment], _Answer],
        *,
        basic: bool,
    ) -> None:
        """Read the body, the Basic credentials (``basic``) or else the client certificate, and
        run ``work`` off the event loop; a missing piece is refused before anything is parsed."""
        try:
            body = await _body(scope, receive)
            if body is None:
                return
            client_der = client_certificate_der(scope)
            credentials = _basic(scope) if basic else ("", "")
            if not basic and client_der is None:
                raise Unauthenticated(
                    "simplereenroll needs the certificate being renewed as the TLS client certificate"
                )
        except CertfleetError as exc:
            await _send(send, _error(service, exc))
            return
        version, unique = _channel(scope)
        enrolment = _Enrolment(label, body, version, unique, client_der, credentials)
        await _send(send, await self._work(scope, service, work, service, enrolment))

    async def _work(
        self, scope: Scope, service: EstService, call: Callable[..., _Answer], *args: Any
    ) -> _Answer:
        try:
            answer: Awaitable[_Answer] = asyncio.get_running_loop().run_in_executor(
                self._executor, call, *args
            )
            return await answer
        except CertfleetError as exc:
            return _error(service, exc)
        except Exception as exc:  # noqa: BLE001 - the outermost request handler: no traceback to the client
            service.count("error")
            outage = database_outage(exc)
            if outage is None and isinstance(exc, sqlite3.OperationalError):
                # The SQLite write gate's bounded wait for another process's writer.
                outage = "the database is unavailable: " + " ".join(str(exc).split())[:200]
            if outage is not None:
                return _text(503, outage, {"Retry-After": DATABASE_RETRY_AFTER})
            # The exception's type only: its message could quote a request, never a generated key.
            _log.error("EST %s failed: %s", scope["path"], type(exc).__name__)
            return _text(500, "the server failed to handle this request")


async def _send(send: Send, answer: _Answer) -> None:
    headers = [
        (b"content-type", answer.media_type.encode("latin-1")),
        (b"content-length", str(len(answer.body)).encode("latin-1")),
        *(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in answer.headers.items()
        ),
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})

"""The plain-HTTP listener: OCSP (RFC 6960 appendix A, RFC 5019), CRLs and CA certificates,
nothing secret.

It is the hottest path of the process, so it is a bare ASGI callable rather than a FastAPI
app: no routing table, dependency injection, validation or per-request ``Request`` object.
An OCSP request answered from the worker's memory (see
:meth:`certfleet.services.revocation.RevocationService.ocsp_remembered`) is served on the
event loop without a thread hop; anything that may sign or read more than one row (an OCSP
miss, a CRL, a CA certificate, a SCEP PKIOperation) runs in a thread pool of this app's own
(``loop.run_in_executor``: about 40 us less CPU per hop than anyio's ``to_thread.run_sync``,
measured with wrk here; separate from the ACME app's pool). The guarantees of the FastAPI
version stay: the body limit in front of everything (:class:`BodyLimit`), RFC 7807 problem documents
for bad HTTP input (404, 405, 500), OCSP errors as OCSP responses with HTTP 200 (appendix
A.1), and the OCSP request counters and latencies on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from certfleet.api import scep
from certfleet.api._body_limit import ASGIApp, BodyLimit, BodyLimits, Receive, Scope, Send
from certfleet.api._body_limit import _BodyTooLarge as BodyTooLarge
from certfleet.api._body_limit import _send_413 as send_413
from certfleet.api._ports import Platform
from certfleet.api._problems import DATABASE_RETRY_AFTER
from certfleet.api._public_responses import NO_STORE, Documents, header, problem, respond
from certfleet.api.spiffe import PUBLIC_PATHS as SPIFFE_PATHS
from certfleet.api.spiffe import public_document as spiffe_document
from certfleet.errors import CertfleetError, NotFound
from certfleet.metrics import PlatformMetrics
from certfleet.revocation import (
    MAX_REQUEST_BYTES,
    CrlKind,
    MalformedOcspRequest,
    Published,
    decode_get_path,
    error_response,
)
from certfleet.x509 import to_pem

__all__ = ["create_public_app"]

_log = logging.getLogger("certfleet.revocation")

OCSP_RESPONSE = b"application/ocsp-response"
CRL_MEDIA_TYPE = b"application/pkix-crl"
PEM_MEDIA_TYPE = b"application/x-pem-file"
_MALFORMED = error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
_INTERNAL = error_response(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
_DECODED_PATHS = 10_000

# As many threads as anyio's default limit, which these routes used before.
_THREADS = 40

_T = TypeVar("_T")


class _OcspMetrics:
    """The OCSP request counter and latency histogram of ``/metrics``, their labelled children
    looked up once per (method, status) rather than on every request."""

    def __init__(self, metrics: PlatformMetrics) -> None:
        self._metrics = metrics.requests
        self._counters: dict[tuple[str, int], Any] = {}
        self._latencies: dict[str, Any] = {}

    def observe(self, method: str, status: int, seconds: float) -> None:
        counter = self._counters.get((method, status))
        if counter is None:
            if len(self._counters) > 64:  # methods are the client's choice: keep this bounded
                self._metrics.observe("ocsp", "ocsp", method, status, seconds)
                return
            counter = self._counters[(method, status)] = self._metrics.ocsp_requests.labels(
                method, str(status)
            )
        latency = self._latencies.get(method)
        if latency is None:
            latency = self._latencies[method] = self._metrics.ocsp_latency.labels(method)
        counter.inc()
        latency.observe(seconds)


class PublicApp:
    """The ASGI callable; see the module docstring. OCSP requests skip the generic body-limit
    wrapper: the POST handler reads at most the same limit itself and answers 413 the same
    way; the other routes never read a body and stay behind :class:`BodyLimit`."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._revocation = platform.revocation
        self._metrics = _OcspMetrics(platform.metrics)
        self._documents = Documents(platform.clock.now)
        # PostgreSQL: the generation read is a round trip; it runs in a thread (where
        # concurrent requests share one read), memory is still checked first there.
        self._memory_on_loop = platform.revocation.ocsp_memory_is_local
        # GET paths already decoded (the same few requests arrive again and again): the
        # strict percent and base64 decoding is a third of a remembered GET's cost.
        self._decoded: dict[str, bytes] = {}
        limits = BodyLimits(platform.settings.server.max_body_bytes)
        self._post_limit = limits.for_request("POST", "/ocsp")
        self._others = BodyLimit(self._other, limits=limits)
        self._executor = ThreadPoolExecutor(_THREADS, thread_name_prefix="public-http")

    async def _in_thread(self, call: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":  # nothing to start or stop: acknowledge both
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
            return
        path: str = scope["path"]
        if path == "/ocsp" or path.startswith("/ocsp/"):
            try:
                await self._ocsp(scope, receive, send, path)
            except Exception as exc:  # noqa: BLE001 - the outermost handler: an OCSP error
                _log.error("OCSP request failed: %s: %s", type(exc).__name__, exc)
                await respond(send, 200, _INTERNAL, [(b"content-type", OCSP_RESPONSE), *NO_STORE])
            return
        await self._others(scope, receive, send)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        try:
            if path == "/healthz":  # 503 naming why when this node must not serve (its database lost)
                if not self._allow(scope, "GET"):
                    await self._not_allowed(send, "GET, HEAD")
                elif reasons := await self._in_thread(self._platform.unhealthy_reasons):
                    retry = [(b"retry-after", DATABASE_RETRY_AFTER.encode())]
                    await problem(send, 503, "Service Unavailable", "; ".join(reasons), retry)
                else:
                    await respond(send, 200, b"ok\n", [(b"content-type", b"text/plain; charset=utf-8")])
            elif path == scep.PATH:  # SCEP (RFC 8894): devices enrol before they trust a CA
                await self._scep(scope, receive, send)
            elif path.startswith("/crl/") or path.startswith("/ca/"):
                if self._allow(scope, "GET"):
                    await self._static(scope, send, path)
                else:
                    await self._not_allowed(send, "GET, HEAD")
            elif path in SPIFFE_PATHS:  # the SPIFFE bundle, JWKS and OIDC discovery (issue 15)
                if self._allow(scope, "GET"):
                    document = await self._in_thread(spiffe_document, self._platform, path)
                    headers = [(b"content-type", b"application/json")]
                    body = json.dumps(document).encode()
                    await respond(send, 200, body, headers, head=scope["method"] == "HEAD")
                else:
                    await self._not_allowed(send, "GET, HEAD")
            else:
                await problem(send, 404, "Not Found", f"no resource {path!r} on this listener")
        except CertfleetError as exc:
            await problem(send, exc.http_status, exc.title, exc.detail)
        except BodyTooLarge:
            raise  # BodyLimit answers 413 itself
        except Exception as exc:  # noqa: BLE001 - the outermost handler: a problem, not a traceback
            _log.error("unhandled error: %s: %s", type(exc).__name__, exc)
            await problem(send, 500, "Internal error", "the server failed to handle this request")

    @staticmethod
    def _allow(scope: Scope, method: str) -> bool:
        return bool(scope["method"] == method or (method == "GET" and scope["method"] == "HEAD"))

    @staticmethod
    async def _not_allowed(send: Send, allow: str) -> None:
        detail = f"allowed methods: {allow}"
        await problem(send, 405, "Method Not Allowed", detail, [(b"allow", allow.encode())])

    # -- OCSP -------------------------------------------------------------------------------

    async def _ocsp(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        status = 500  # an exception before the response started is a server error
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                self._metrics.observe(method, status, time.perf_counter() - started)

        async def counted(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif not message.get("more_body", False):
                # Counted before the answer leaves: a client that has its answer and then
                # scrapes /metrics (from any worker) finds it counted.
                observe()
            await send(message)

        try:
            if method == "POST":
                await self._ocsp_post(scope, receive, counted)
            elif self._allow(scope, "GET"):
                await self._ocsp_get(scope, counted, path)
            else:
                await self._not_allowed(counted, "GET, HEAD, POST")
        finally:
            observe()

    async def _ocsp_post(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An ``application/ocsp-request`` body (RFC 6960 appendix A.1.1). Over the listener's
        body limit it is 413 (declared: before reading a byte; chunked: as soon as the count
        passes it), as :class:`BodyLimit` answers on every other route."""
        limit = self._post_limit
        declared = header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            await send_413(send, limit, "POST", scope["path"])
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await send_413(send, limit, "POST", scope["path"])
                return
            if not message.get("more_body"):
                break
        if len(body) > MAX_REQUEST_BYTES:
            await self._malformed(send)
            return
        await self._answer(scope, send, body)

    async def _ocsp_get(self, scope: Scope, send: Send, path: str) -> None:
        """``/ocsp/{url-encoded base64 of the DER request}``. The raw path is decoded, not
        the one the server already unquoted: ``%2F`` and ``+`` must keep their meaning."""
        raw = scope.get("raw_path")
        text = bytes(raw).decode("latin-1") if raw else path
        marker = text.find("/ocsp/")
        encoded = text[marker + len("/ocsp/") :] if marker >= 0 else ""
        request_der = self._decoded.get(encoded)
        if request_der is None:
            try:
                request_der = decode_get_path(encoded)
            except MalformedOcspRequest:
                await self._malformed(send)
                return
            if len(self._decoded) >= _DECODED_PATHS:
                self._decoded.clear()
            self._decoded[encoded] = request_der
        await self._answer(scope, send, request_der)

    async def _answer(self, scope: Scope, send: Send, request_der: bytes) -> None:
        document = None
        if self._memory_on_loop:  # SQLite: no network on the event loop, ever
            try:
                document = self._revocation.ocsp_remembered(request_der)
            except Exception as exc:  # noqa: BLE001 - the generation check failed: the slow path
                _log.warning("OCSP memory check failed: %s: %s", type(exc).__name__, exc)
        if document is None:
            document = await self._in_thread(self._sign, request_der)
        await self._documents.send(send, scope, document, OCSP_RESPONSE)

    def _sign(self, request_der: bytes) -> Published:
        try:
            return self._revocation.ocsp(request_der)
        except Exception as exc:  # noqa: BLE001 - the outermost handler: an OCSP error, not a 500 page
            _log.error("OCSP request failed: %s: %s", type(exc).__name__, exc)
            return Published(_INTERNAL)

    @staticmethod
    async def _malformed(send: Send) -> None:
        # RFC 6960 appendix A.1: errors are OCSP responses too, sent with HTTP 200.
        await respond(send, 200, _MALFORMED, [(b"content-type", OCSP_RESPONSE), *NO_STORE])

    # -- SCEP ----------------------------------------------------------------------------------

    async def _scep(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "POST"):
            await self._not_allowed(send, "GET, POST")
            return
        body = b""
        if method == "POST":  # BodyLimit, outside, has already bounded it
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        parameters = scep.query_parameters(scope.get("query_string", b""))
        server = self._platform.scep_server
        result = scep.answer_at_once(server, parameters)  # no thread hop for what needs none
        if result is None:
            result = await self._in_thread(scep.answer, server, method, parameters, body)
        await respond(send, result.status, result.body, [(b"content-type", result.media_type.encode())])

    # -- CRLs and CA certificates -----------------------------------------------------------

    async def _static(self, scope: Scope, send: Send, path: str) -> None:
        if path.startswith("/crl/"):
            document = await self._in_thread(self._crl, path.removeprefix("/crl/"))
            await self._documents.send(send, scope, document, CRL_MEDIA_TYPE)
            return
        body, media_type = await self._in_thread(self._ca_material, path.removeprefix("/ca/"))
        await respond(send, 200, body, [(b"content-type", media_type)], head=scope["method"] == "HEAD")

    def _crl(self, name: str) -> Published:
        """``/crl/{ca_id}.crl`` (the CRL distribution point) and ``/crl/{ca_id}-delta.crl``
        (the Freshest CRL pointer of the complete CRL), DER."""
        if "/" in name:
            raise NotFound(f"no CRL {name!r}")
        if name.endswith("-delta.crl"):
            return self._revocation.crl(name.removesuffix("-delta.crl"), CrlKind.DELTA)
        if name.endswith(".crl"):
            return self._revocation.crl(name.removesuffix(".crl"), CrlKind.FULL)
        raise NotFound(f"no CRL {name!r}")

    def _ca_material(self, name: str) -> tuple[bytes, bytes]:
        authorities = self._platform.authorities
        if name == "root.pem":
            return to_pem([authorities.root().certificate]).encode(), PEM_MEDIA_TYPE
        if name == "chain.pem":
            return to_pem(authorities.issuing_authority().chain).encode(), PEM_MEDIA_TYPE
        if name.endswith(".cer"):
            ca_id = name.removesuffix(".cer")
            for ca in authorities.hierarchy():
                if ca.id == ca_id:
                    return ca.certificate.public_bytes(serialization.Encoding.DER), b"application/pkix-cert"
            raise NotFound(f"no CA {ca_id!r}")
        raise NotFound(f"no resource '/ca/{name}' on this listener")


def create_public_app(platform: Platform) -> ASGIApp:
    """The plain-HTTP listener's ASGI app, with the body limit (``[server] max_body_bytes``,
    at most 64 KiB for an OCSP POST)."""
    return PublicApp(platform)

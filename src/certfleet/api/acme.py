"""ACME (RFC 8555) on the HTTPS listener: a bare ASGI callable in front of the FastAPI app.

Every ``/acme/...`` request is answered here and never enters Starlette's routing, FastAPI's
dependency injection or its middleware stack (``create_api_app`` hands them over before
Starlette sees them): a certificate is about six signed requests, and the framework's share
of a request was a sixth of a serve worker's CPU under ``bench/acme.py``. The module only
moves bytes between HTTP and :class:`certfleet.protocols.acme.AcmeServer`, which holds every
protocol rule, and keeps what the FastAPI router gave ACME:

- the body limit: ``AcmeServer.max_body_bytes`` (64 KiB), or ``[server] max_body_bytes`` if
  lower; a declared ``Content-Length`` over it is refused before a byte is read, a chunked
  body as soon as the count passes it (``payloadTooLarge``: 413, and the connection closes,
  so the rest is never read);
- RFC 8555 problem documents for every failure: unknown resources 404 and wrong methods 405
  (with ``Allow``) as ``malformed``, a failed handler ``serverInternal`` 500, a database out of
  reach ``serverInternal`` with 503 and ``Retry-After``; a path with a trailing slash that
  names a resource without it is redirected there (307), as Starlette did;
- HEAD and GET new-nonce (200 and 204, RFC 8555 section 7.2), the directory, the terms and
  renewal-info (RFC 9773), every URL built from the URL the client reached;
- the request counters and latency histograms of ``/metrics``
  (``certfleet_acme_requests_total``, ``certfleet_acme_request_duration_seconds``: the same
  names and labels, every ``/acme/`` request counted, timed to the end of its answer).

The handlers block on the database, so they run in a thread pool of this app's own
(``loop.run_in_executor``: about a third of the CPU of anyio's ``to_thread.run_sync`` per
hop, measured on these machines); what touches no database is answered on the event loop:
the directory, the terms, the 404s and 405s, and on SQLite (nonces in the node's shared file,
microseconds under its lock) new-nonce and the nonce of a ``payloadTooLarge``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.datastructures import URL

from certfleet.api._body_limit import BodyLimits, Message, Receive, Scope, Send
from certfleet.api._ports import Platform
from certfleet.api._problems import DATABASE_RETRY_AFTER, database_outage
from certfleet.metrics import acme_endpoint
from certfleet.protocols.acme import AcmeProblem, AcmeRequest, AcmeResponse, AcmeServer, AcmeUrls, Endpoint
from certfleet.protocols.acme.responses import problem_response

__all__ = ["PREFIX", "AcmeApp", "route_path"]

PREFIX = "/acme/"
_log = logging.getLogger("certfleet.api.acme")
_T = TypeVar("_T")

# As many threads as anyio's default limit, which the FastAPI routes shared with everything
# else: a challenge's answer may hold one for up to a second while its validation runs.
_THREADS = 40

TERMS = (
    b"certfleet private ACME CA. Certificates are issued for names you prove control of,\n"
    b"under your organisation's policy, and may be revoked at any time.\n"
)

# Every JWS-signed POST resource (RFC 8555 section 7.1) by the shape of its path below
# /acme/: the first segment, then whether an id follows and what comes after it.
_SIGNED_POSTS: Mapping[tuple[str, ...], Endpoint] = {
    ("new-account",): Endpoint.NEW_ACCOUNT,
    ("new-order",): Endpoint.NEW_ORDER,
    ("revoke-cert",): Endpoint.REVOKE_CERT,
    ("key-change",): Endpoint.KEY_CHANGE,
    ("acct", "{id}"): Endpoint.ACCOUNT,
    ("acct", "{id}", "orders"): Endpoint.ACCOUNT_ORDERS,
    ("order", "{id}"): Endpoint.ORDER,
    ("order", "{id}", "finalize"): Endpoint.FINALIZE,
    ("authz", "{id}"): Endpoint.AUTHZ,
    ("chall", "{id}"): Endpoint.CHALLENGE,
    ("cert", "{id}"): Endpoint.CERTIFICATE,
}
# The resources a client reads with GET (HEAD too for new-nonce), by the same shapes.
_READS: Mapping[tuple[str, ...], str] = {
    ("directory",): "GET",
    ("terms",): "GET",
    ("new-nonce",): "GET, HEAD",
    ("renewal-info", "{id}"): "GET",
}


def route_path(scope: Scope) -> str:
    """The request's path below the app's ``root_path`` (Starlette's own rule: ``path``
    includes it), the path routes are matched on."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def _shape(path: str) -> tuple[tuple[str, ...], str | None] | None:
    """(shape, resource id) of a path below /acme/, or None when it names no resource."""
    parts = path[len(PREFIX) :].split("/")
    if not all(parts):  # an empty segment: "//" or a trailing slash
        return None
    if len(parts) == 1:
        return (parts[0],), None
    return (parts[0], "{id}", *parts[2:]), parts[1]


class AcmeApp:
    """The ASGI callable for every path below :data:`PREFIX`; see the module docstring."""

    def __init__(self, platform: Platform) -> None:
        # The ACME server is looked up at the first request: building the app touches no
        # service (the OpenAPI document is built from a stand-in platform).
        self._platform = platform
        self._body_limits = BodyLimits(platform.settings.server.max_body_bytes)
        self._executor = ThreadPoolExecutor(_THREADS, thread_name_prefix="acme-http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # an exception before the response started is a server error

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        path = route_path(scope)
        try:
            await self._dispatch(scope, receive, counted, path)
        finally:
            metrics = self._platform.metrics.requests
            metrics.observe(
                "acme", acme_endpoint(path), scope["method"], status, time.perf_counter() - started
            )

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method: str = scope["method"]
        try:
            found = _shape(path)
            if found is None:
                await self._not_found(scope, send, path)
            elif (endpoint := _SIGNED_POSTS.get(found[0])) is not None:
                if method == "POST":
                    await self._post(scope, receive, send, endpoint, found[1])
                else:
                    await _not_allowed(send, "POST")
            elif (allowed := _READS.get(found[0])) is not None:
                if method in allowed.split(", "):
                    await self._read(scope, send, found[0][0], found[1])
                else:
                    await _not_allowed(send, allowed)
            else:
                await self._not_found(scope, send, path)
        except Exception as exc:  # noqa: BLE001 - the outermost request handler: a problem, never a traceback
            _log.error("ACME %s %s failed: %s: %s", method, path, type(exc).__name__, exc)
            await _send(send, _failure(exc))

    # -- the resources -------------------------------------------------------------------------

    @property
    def _server(self) -> AcmeServer:
        return self._platform.acme

    async def _in_thread(self, call: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def _read(self, scope: Scope, send: Send, resource: str, resource_id: str | None) -> None:
        server = self._server
        if resource == "directory":
            body = _json(server.directory(_urls(scope)))
            await _send(send, AcmeResponse(200, body))
        elif resource == "terms":
            await _send(send, AcmeResponse(200, TERMS, "text/plain; charset=utf-8"))
        elif resource == "new-nonce":
            # RFC 8555 7.2: 200 for HEAD, 204 for GET.
            nonce = server.new_nonce() if self._nonces_on_loop else await self._in_thread(server.new_nonce)
            headers = {"Replay-Nonce": nonce, "Cache-Control": "no-store"}
            answer = AcmeResponse(200 if scope["method"] == "HEAD" else 204, None, "", headers)
            await _send(send, answer.link(_urls(scope).directory(), "index"))
        else:  # renewal-info
            assert resource_id is not None
            answer = await self._in_thread(server.renewal_info_response, resource_id, _urls(scope))
            await _send(send, answer)

    async def _post(
        self, scope: Scope, receive: Receive, send: Send, endpoint: Endpoint, resource_id: str | None
    ) -> None:
        server = self._server
        url = URL(scope=scope)
        urls = _urls(scope, url)
        limit = min(server.max_body_bytes, self._body_limits.for_request("POST", scope["path"]))
        body = await _read_body(scope, receive, limit)
        if body is None:
            problem = AcmeProblem("payloadTooLarge", f"request body is larger than {limit} bytes")
            answer = problem_response(problem)
            if self._nonces_on_loop:
                answer = server.decorate(answer, urls)
            else:
                answer = await self._in_thread(server.decorate, answer, urls)
            answer.headers["Connection"] = "close"  # the rest of the body is never read
            await _send(send, answer)
            return
        request = AcmeRequest(str(url), _header(scope, b"content-type"), body, urls)
        await _send(send, await self._in_thread(server.handle, endpoint, request, resource_id))

    @property
    def _nonces_on_loop(self) -> bool:
        """Nonces in the node's shared file (SQLite): issuing one is microseconds under that
        file's lock, no database, so it needs no thread."""
        return self._server.nonces.outside_database

    async def _not_found(self, scope: Scope, send: Send, path: str) -> None:
        found = _shape(path.rstrip("/")) if path.endswith("/") else None
        if found is not None and (found[0] in _SIGNED_POSTS or found[0] in _READS):
            # Starlette's redirect_slashes, which the FastAPI router did for ACME too.
            location = str(URL(scope={**scope, "path": scope["path"].rstrip("/")}))
            await _send(send, AcmeResponse(307, None, "", {"Location": location}))
            return
        await _send(send, problem_response(AcmeProblem("notFound", f"no ACME resource {path!r}")))


def _urls(scope: Scope, url: URL | None = None) -> AcmeUrls:
    # Built from the URL the client reached, so every URL handed out is one it can use and the
    # JWS "url" header can be compared with the request URL exactly.
    url = url or URL(scope=scope)
    return AcmeUrls(f"{url.scheme}://{url.netloc}{scope.get('root_path', '')}/acme")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to be over ``limit`` bytes (a declared
    length at once; a chunked body once the count passes it): nothing beyond is buffered."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: nobody to answer
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _failure(exc: Exception) -> AcmeResponse:
    """A handler's exception as an RFC 8555 problem: a database out of reach is 503 with
    Retry-After (RFC 8555 has no type for it: serverInternal), anything else 500. sqlite3's
    own error counts as out of reach too, as on the other routes: the SQLite write gate's
    bounded wait for a writer of another process raises it unwrapped."""
    outage = database_outage(exc)
    if outage is None and isinstance(exc, sqlite3.OperationalError):
        outage = "the database is unavailable: " + " ".join(str(exc).split())[:200]
    problem = AcmeProblem("serverInternal", outage or "the server failed to handle this request")
    answer = problem_response(problem)
    if outage is not None:
        answer.status = 503
        answer.body = {**problem.to_json(), "status": 503}
        answer.headers["Retry-After"] = DATABASE_RETRY_AFTER
    return answer


async def _not_allowed(send: Send, allowed: str) -> None:
    problem = AcmeProblem("methodNotAllowed", f"allowed methods: {allowed}", headers={"Allow": allowed})
    await _send(send, problem_response(problem))


def _json(value: Any) -> bytes:
    # Compact: ``indent`` makes the json module fall back to its pure-Python encoder (about
    # four times the CPU per answer); RFC 8555 asks for JSON, not for pretty JSON.
    return json.dumps(value, separators=(",", ":")).encode()


async def _send(send: Send, answer: AcmeResponse) -> None:
    """The answer as Starlette's ``Response`` sent it (the server drops the body of a HEAD)."""
    if isinstance(answer.body, bytes):
        body = answer.body
    elif answer.body is None:
        body = b""
    else:
        body = _json(answer.body)
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers.items()
    ]
    if answer.content_type:
        headers.append((b"content-type", answer.content_type.encode("latin-1")))
    if answer.status != 204 and answer.status >= 200:  # RFC 9110 8.6: a 204 carries no length
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

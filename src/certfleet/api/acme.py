"""The ACME router, mounted at ``/acme`` on the HTTPS app: it only moves bytes between HTTP
and :class:`certfleet.protocols.acme.AcmeServer`, which holds every protocol rule."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from certfleet.api._auth import get_platform
from certfleet.api._problems import DATABASE_RETRY_AFTER, database_outage
from certfleet.protocols.acme import AcmeProblem, AcmeRequest, AcmeResponse, AcmeServer, AcmeUrls, Endpoint
from certfleet.protocols.acme.responses import problem_response

__all__ = ["router"]

router = APIRouter(prefix="/acme", include_in_schema=False)
_log = logging.getLogger("certfleet.api.acme")


def _server(request: Request) -> AcmeServer:
    return get_platform(request).acme


def _urls(request: Request) -> AcmeUrls:
    # Built from the URL the client reached, so every URL we hand out is one it can use and
    # the JWS "url" header can be compared with the request URL exactly.
    return AcmeUrls(f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}/acme")


def _response(result: AcmeResponse) -> Response:
    if isinstance(result.body, bytes):
        content = result.body
    elif result.body is None:
        content = b""
    else:
        content = json.dumps(result.body, indent=2).encode()
    return Response(
        content, status_code=result.status, media_type=result.content_type, headers=result.headers
    )


async def _read_body(request: Request, limit: int) -> bytes | None:
    """Read at most ``limit + 1`` bytes: an oversized body is refused without buffering it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _post(request: Request, endpoint: Endpoint, resource_id: str | None = None) -> Response:
    server = _server(request)
    urls = _urls(request)
    body = await _read_body(request, server.max_body_bytes)
    try:
        if body is None:
            problem = AcmeProblem(
                "payloadTooLarge", f"request body is larger than {server.max_body_bytes} bytes"
            )
            result = await run_in_threadpool(server.decorate, problem_response(problem), urls)
        else:
            acme_request = AcmeRequest(str(request.url), request.headers.get("content-type"), body, urls)
            result = await run_in_threadpool(server.handle, endpoint, acme_request, resource_id)
    except Exception as exc:  # noqa: BLE001 - the outermost request handler: a problem, never a traceback
        _log.error("ACME %s failed: %s: %s", endpoint.value, type(exc).__name__, exc)
        outage = database_outage(exc)
        problem = AcmeProblem("serverInternal", outage or "the server failed to handle this request")
        result = problem_response(problem)
        if outage is not None:  # RFC 8555 has no type for it: serverInternal, but 503 and retry
            result.status = 503
            result.body = {**problem.to_json(), "status": 503}
            result.headers["Retry-After"] = DATABASE_RETRY_AFTER
    return _response(result)


@router.get("/directory")
async def directory(request: Request) -> Response:
    body = _server(request).directory(_urls(request))
    return Response(json.dumps(body, indent=2), media_type="application/json")


@router.head("/new-nonce")
async def new_nonce_head(request: Request) -> Response:
    nonce = await run_in_threadpool(_server(request).new_nonce)
    return Response(status_code=200, headers=_nonce_headers(nonce, _urls(request)))


@router.get("/new-nonce")
async def new_nonce_get(request: Request) -> Response:
    # RFC 8555 7.2: 200 for HEAD, 204 for GET.
    nonce = await run_in_threadpool(_server(request).new_nonce)
    return Response(status_code=204, headers=_nonce_headers(nonce, _urls(request)))


def _nonce_headers(nonce: str, urls: AcmeUrls) -> dict[str, str]:
    return {"Replay-Nonce": nonce, "Cache-Control": "no-store", "Link": f'<{urls.directory()}>;rel="index"'}


@router.get("/renewal-info/{cert_id}")
async def renewal_info(cert_id: str, request: Request) -> Response:
    result = await run_in_threadpool(_server(request).renewal_info_response, cert_id, _urls(request))
    return _response(result)


@router.get("/terms", response_class=PlainTextResponse)
async def terms() -> str:
    return (
        "certfleet private ACME CA. Certificates are issued for names you prove control of,\n"
        "under your organisation's policy, and may be revoked at any time.\n"
    )


# Every JWS-signed POST resource (RFC 8555 section 7.1) as (path, endpoint, route name); the
# one path parameter, when there is one, is the resource's id.
_SIGNED_POSTS = (
    ("/new-account", Endpoint.NEW_ACCOUNT, "new_account"),
    ("/acct/{account_id}", Endpoint.ACCOUNT, "account"),
    ("/acct/{account_id}/orders", Endpoint.ACCOUNT_ORDERS, "account_orders"),
    ("/new-order", Endpoint.NEW_ORDER, "new_order"),
    ("/order/{order_id}", Endpoint.ORDER, "order"),
    ("/order/{order_id}/finalize", Endpoint.FINALIZE, "finalize"),
    ("/authz/{authz_id}", Endpoint.AUTHZ, "authorization"),
    ("/chall/{challenge_id}", Endpoint.CHALLENGE, "challenge"),
    ("/cert/{order_id}", Endpoint.CERTIFICATE, "certificate"),
    ("/revoke-cert", Endpoint.REVOKE_CERT, "revoke_cert"),
    ("/key-change", Endpoint.KEY_CHANGE, "key_change"),
)


def _signed_post(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        resource_id = next(iter(request.path_params.values()), None)
        return await _post(request, endpoint, None if resource_id is None else str(resource_id))

    return handle


for _path, _endpoint, _name in _SIGNED_POSTS:
    router.add_api_route(_path, _signed_post(_endpoint), methods=["POST"], name=_name)

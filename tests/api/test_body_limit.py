"""Request bodies are bounded before anything reads them: a declared Content-Length over the
limit is refused without reading a byte, and a chunked body is abandoned as soon as it
passes the limit, on the API, the dashboard and the plain-HTTP listener alike."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from certfleet.api import create_api_app, create_public_app
from certfleet.api._body_limit import CSR_BODY_BYTES, DEFAULT_BODY_BYTES, BodyLimit, BodyLimits
from certfleet.app import Platform
from certfleet.config import load_settings
from certfleet.errors import ConfigurationError
from tests.api.conftest import CERTS, ApiClient, assert_problem, make_csr, stored_rows

CHUNK = 16 * 1024


class Feed:
    """A chunked request body that counts what the server pulled from it."""

    def __init__(self, total: int, chunk: bytes = b"x" * CHUNK) -> None:
        self.total = total
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += len(self.chunk)
            yield self.chunk


def _run(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://certfleet.test") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


def _assert_413(response: httpx.Response, limit: int) -> None:
    body = assert_problem(response, 413, f"exceeds the limit of {limit} bytes")
    assert body["type"] == "about:blank" and body["title"] == "Content Too Large"
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize("path", ["/api/v1/agent/enroll", CERTS])
def test_a_chunked_body_to_a_csr_route_is_abandoned_once_past_64_kib(api: ApiClient, path: str) -> None:
    feed = Feed(100 * 1024 * 1024)  # no Content-Length: Transfer-Encoding: chunked
    response = api.post(path, content=feed, headers={"content-type": "application/json"})
    _assert_413(response, CSR_BODY_BYTES)
    assert feed.pulled <= CSR_BODY_BYTES + CHUNK  # stopped at the first chunk past the limit


def test_a_declared_length_over_the_limit_is_refused_without_reading(api: ApiClient) -> None:
    feed = Feed(CSR_BODY_BYTES + 1, chunk=b"x" * (CSR_BODY_BYTES + 1))
    response = api.post(
        "/api/v1/agent/enroll",
        content=feed,
        headers={"content-type": "application/json", "content-length": str(CSR_BODY_BYTES + 1)},
    )
    _assert_413(response, CSR_BODY_BYTES)
    assert feed.pulled == 0


def test_the_refusal_comes_before_authentication_and_records_nothing(api: ApiClient, admin: str) -> None:
    padding = "x" * CSR_BODY_BYTES
    too_big = json.dumps({"csr": make_csr(), "tags": [padding[:100]] * 700})
    assert len(too_big) > CSR_BODY_BYTES
    _assert_413(
        api.post(CERTS, content=too_big, headers={"content-type": "application/json"}), CSR_BODY_BYTES
    )
    _assert_413(api.post(CERTS, token=admin, content=too_big), CSR_BODY_BYTES)
    assert stored_rows(api.platform, "certificates") == 0
    # A CSR request well under the limit is served as before.
    assert api.post(CERTS, token=admin, json={"csr": make_csr()}).status_code == 201


def test_other_routes_and_the_dashboard_have_the_default_limit(api: ApiClient, admin: str) -> None:
    big = Feed(8 * 1024 * 1024)
    _assert_413(api.post("/api/v1/scans", token=admin, content=big), DEFAULT_BODY_BYTES)
    assert big.pulled <= DEFAULT_BODY_BYTES + CHUNK
    # The dashboard's forms stop reading at 64 KiB themselves; a declared length over the
    # listener's limit is refused before the dashboard sees the request.
    declared = str(DEFAULT_BODY_BYTES + 1)
    form = Feed(DEFAULT_BODY_BYTES + 1, chunk=b"x" * (DEFAULT_BODY_BYTES + 1))
    response = api.post(
        "/login",
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded", "content-length": declared},
    )
    _assert_413(response, DEFAULT_BODY_BYTES)
    assert form.pulled == 0


def test_the_public_listeners_ocsp_post_is_bounded(platform: Platform) -> None:
    feed = Feed(10 * 1024 * 1024)
    response = _run(
        create_public_app(platform),
        "POST",
        "/ocsp",
        content=feed,
        headers={"content-type": "application/ocsp-request"},
    )
    _assert_413(response, CSR_BODY_BYTES)
    assert feed.pulled <= CSR_BODY_BYTES + CHUNK


def test_max_body_bytes_is_configurable_and_caps_the_csr_routes_too(
    data_dir: Path, db_url: str, platform: Platform
) -> None:
    (data_dir / "config.toml").write_text("[server]\nmax_body_bytes = 4096\n")
    settings = load_settings({}, data_dir=data_dir, database_url=db_url)
    assert settings.server.max_body_bytes == 4096
    app = create_api_app(dataclasses.replace(platform, settings=settings))
    _assert_413(_run(app, "POST", "/api/v1/scans", content=b"{" + b" " * 4096 + b"}"), 4096)
    _assert_413(_run(app, "POST", "/api/v1/agent/enroll", content=Feed(CSR_BODY_BYTES)), 4096)


@pytest.mark.parametrize("value", ["1048576", 0, 100, -5, True, 2**40])
def test_a_bad_max_body_bytes_is_a_configuration_error(data_dir: Path, value: object) -> None:
    (data_dir / "config.toml").write_text(f"[server]\nmax_body_bytes = {json.dumps(value)}\n")
    with pytest.raises(ConfigurationError, match=r"server\.max_body_bytes must be an integer"):
        load_settings({}, data_dir=data_dir)


def test_route_limits_only_ever_lower_the_default() -> None:
    limits = BodyLimits(2048)
    assert limits.for_request("POST", "/api/v1/certificates") == 2048
    assert limits.for_request("post", "/api/v1/certificates/") == 2048
    assert BodyLimits().for_request("POST", "/api/v1/certificates") == CSR_BODY_BYTES
    assert BodyLimits().for_request("GET", "/api/v1/certificates") == DEFAULT_BODY_BYTES
    assert BodyLimits().for_request("POST", "/ocsp/") == CSR_BODY_BYTES


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    """An app that reads its whole body and then answers with its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def test_a_body_at_the_limit_passes_whole_and_one_byte_more_does_not() -> None:
    app = BodyLimit(_echo, BodyLimits(4096, {}))
    assert _run(app, "POST", "/", content=Feed(4096, b"y" * 1024)).text == "4096"
    assert _run(app, "POST", "/", content=b"y" * 4096).text == "4096"
    _assert_413(_run(app, "POST", "/", content=Feed(4097, b"y" * 4097)), 4096)
    _assert_413(_run(app, "POST", "/", content=b"y" * 4097), 4096)

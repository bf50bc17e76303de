"""An in-process API client (httpx over ASGI, no sockets) and helpers to make tokens and CSRs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID
from sqlalchemy import text

from certfleet.access import Scope
from certfleet.api import create_api_app
from certfleet.app import Platform

CERTS = "/api/v1/certificates"


class ApiClient:
    """Synchronous calls into the ASGI app: each request runs on one private event loop, so
    tests read as plain functions while the app runs exactly as under uvicorn."""

    def __init__(self, platform: Platform, *, raise_app_exceptions: bool = True) -> None:
        self.platform = platform
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(
            app=create_api_app(platform), raise_app_exceptions=raise_app_exceptions
        )
        self._client = httpx.AsyncClient(transport=transport, base_url="https://certfleet.test")

    def request(self, method: str, url: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self._runner.run(self._client.request(method, url, headers=headers, **kwargs))

    def get(self, url: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, token=token, **kwargs)

    def post(self, url: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, token=token, **kwargs)

    def token(self, team: str = "ops", scope: str = "admin", allow_names: Sequence[str] = ()) -> str:
        return self.platform.tokens.create(team, Scope(scope), list(allow_names), actor="test").token

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


@pytest.fixture
def api(platform: Platform) -> Iterator[ApiClient]:
    client = ApiClient(platform)
    yield client
    client.close()


@pytest.fixture
def admin(api: ApiClient) -> str:
    return api.token("ops", "admin")


def make_csr(
    names: Sequence[str] = ("www.example.test",),
    common_name: str | None = None,
    key: CertificateIssuerPrivateKeyTypes | None = None,
) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    algorithm = None if key.__class__.__name__.startswith("Ed") else hashes.SHA256()
    csr = builder.sign(key, algorithm)  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def assert_problem(response: httpx.Response, status: int, detail_contains: str) -> dict[str, Any]:
    """A refusal is RFC 7807 problem+json with the given status and a precise detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert detail_contains in body["detail"], body["detail"]
    return body


def stored_rows(platform: Platform, table: str) -> int:
    """Rows in a table, read past the services: proves a refusal recorded nothing."""
    with platform.database.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

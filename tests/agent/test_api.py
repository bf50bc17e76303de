"""The agent endpoints in process: the client certificate reaches the router through the ASGI
TLS extension, exactly where PeerCertificateProtocol puts it under uvicorn (the real mTLS
listener is exercised in tests/integration/test_agent_nginx.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from certfleet.access import Scope
from certfleet.api import create_api_app
from certfleet.api._peer_certificate import with_client_certificate
from certfleet.app import Platform
from certfleet.x509 import KeyType, generate_private_key, load_certificates
from tests.agent.csrs import csr_for
from tests.api.conftest import assert_problem
from tests.conftest import FakeClock


class AgentApi:
    """Calls into the API app as a TLS client presenting ``certificate_der`` (or none)."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._runner = asyncio.Runner()

    def call(self, method: str, url: str, der: bytes | None = None, **kwargs: Any) -> httpx.Response:
        app = with_client_certificate(create_api_app(self._platform), der)

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://certfleet.test") as client:
                return await client.request(method, url, **kwargs)

        return self._runner.run(go())

    def close(self) -> None:
        self._runner.close()


@pytest.fixture
def agent_api(platform: Platform) -> Iterator[AgentApi]:
    client = AgentApi(platform)
    yield client
    client.close()


def _enrol(platform: Platform, agent_api: AgentApi, allow: list[str] | None = None) -> bytes:
    minted = platform.agents.create_join_token(
        "web1.example.test", team="web", ttl=dt.timedelta(hours=1), allow_names=allow or [], actor="t"
    )
    key = generate_private_key(KeyType.EC_P256)
    response = agent_api.call(
        "POST", "/api/v1/agent/enroll", json={"token": minted.token, "csr": csr_for(key)}
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["host"] == "web1.example.test" and body["team"] == "web"
    cert = load_certificates(body["certificate_pem"].encode())[0]
    assert cert.public_key() == key.public_key()
    return cert.public_bytes(serialization.Encoding.DER)


def test_ca_bundle_starts_with_the_root(platform: Platform, agent_api: AgentApi) -> None:
    response = agent_api.call("GET", "/api/v1/agent/ca.pem")
    assert response.status_code == 200
    certs = load_certificates(response.content)
    assert certs[0] == platform.authorities.root().certificate
    assert len(certs) == 2


def test_enrol_then_issue_report_and_read_instructions(platform: Platform, agent_api: AgentApi) -> None:
    der = _enrol(platform, agent_api, ["*.example.test"])
    key = generate_private_key(KeyType.EC_P256)
    issued = agent_api.call(
        "POST",
        "/api/v1/agent/certificates",
        der,
        json={"name": "www", "csr": csr_for(key, ["www.example.test"])},
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["certificate"]["team"] == "web" and body["reused"] is False
    report = agent_api.call(
        "POST",
        "/api/v1/agent/deployments",
        der,
        json={
            "name": "www",
            "status": "deployed",
            "certificate_pem": body["fullchain_pem"],
            "files": {"key": "/etc/tls/www.key", "fullchain": "/etc/tls/www.crt"},
            "endpoint": "127.0.0.1:8443",
            "sni": "www.example.test",
        },
    )
    assert report.status_code == 201, report.text
    assert report.json()["host"] == "web1.example.test"
    instructions = agent_api.call("GET", "/api/v1/agent/instructions", der)
    assert instructions.status_code == 200
    [item] = instructions.json()["certificates"]
    assert item["name"] == "www" and item["serial"] == body["certificate"]["serial"]
    admin = platform.tokens.create("ops", Scope.ADMIN, [], actor="t")
    listing = agent_api.call(
        "GET", "/api/v1/agents/deployments", headers={"Authorization": f"Bearer {admin.token}"}
    )
    assert listing.status_code == 200
    [row] = listing.json()
    assert row["paths"] == ["/etc/tls/www.crt", "/etc/tls/www.key"] and row["endpoint"] == "127.0.0.1:8443"


def test_agent_endpoints_need_the_client_certificate(agent_api: AgentApi) -> None:
    response = agent_api.call("GET", "/api/v1/agent/instructions")
    assert_problem(response, 401, "client certificate")


def test_replayed_token_is_refused_over_the_api(platform: Platform, agent_api: AgentApi) -> None:
    minted = platform.agents.create_join_token(
        "web1.example.test", team=None, ttl=dt.timedelta(hours=1), actor="t"
    )
    body = {"token": minted.token, "csr": csr_for(generate_private_key(KeyType.EC_P256))}
    assert agent_api.call("POST", "/api/v1/agent/enroll", json=body).status_code == 201
    assert_problem(agent_api.call("POST", "/api/v1/agent/enroll", json=body), 401, "already used")


def test_expired_token_is_refused_over_the_api(
    platform: Platform, agent_api: AgentApi, clock: FakeClock
) -> None:
    minted = platform.agents.create_join_token(
        "web1.example.test", team=None, ttl=dt.timedelta(seconds=30), actor="t"
    )
    clock.advance(dt.timedelta(seconds=31))
    body = {"token": minted.token, "csr": csr_for(generate_private_key(KeyType.EC_P256))}
    assert_problem(agent_api.call("POST", "/api/v1/agent/enroll", json=body), 401, "expired")


def test_revoked_agent_is_refused_over_the_api(platform: Platform, agent_api: AgentApi) -> None:
    der = _enrol(platform, agent_api)
    assert agent_api.call("GET", "/api/v1/agent/instructions", der).status_code == 200
    platform.agents.revoke("web1.example.test", actor="test")
    assert_problem(agent_api.call("GET", "/api/v1/agent/instructions", der), 403, "revoked")


def test_names_outside_the_policy_are_refused(platform: Platform, agent_api: AgentApi) -> None:
    der = _enrol(platform, agent_api)
    csr = csr_for(generate_private_key(KeyType.EC_P256), ["www.other.test"])
    response = agent_api.call("POST", "/api/v1/agent/certificates", der, json={"name": "x", "csr": csr})
    assert_problem(response, 403, "www.other.test")


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"token": "x"}, 422, "csr"),
        ({"token": "x", "csr": "x", "extra": 1}, 422, "extra"),
        ({"token": "cfj_abc_def", "csr": "-----BEGIN CERTIFICATE REQUEST-----\n"}, 400, "CSR"),
        ({"token": "nonsense", "csr": "x"}, 401, "malformed join token"),
    ],
)
def test_malformed_enrolments_are_precise(
    agent_api: AgentApi, body: dict[str, Any], status: int, detail: str
) -> None:
    assert_problem(agent_api.call("POST", "/api/v1/agent/enroll", json=body), status, detail)


def test_an_agent_renews_its_identity_with_its_current_one(platform: Platform, agent_api: AgentApi) -> None:
    der = _enrol(platform, agent_api)
    key = generate_private_key(KeyType.EC_P256)
    response = agent_api.call("POST", "/api/v1/agent/identity", der, json={"csr": csr_for(key)})
    assert response.status_code == 201, response.text
    new = load_certificates(response.json()["certificate_pem"].encode())[0]
    assert new.public_key() == key.public_key()
    new_der = new.public_bytes(serialization.Encoding.DER)
    assert agent_api.call("GET", "/api/v1/agent/instructions", new_der).status_code == 200
    assert_problem(
        agent_api.call("POST", "/api/v1/agent/identity", json={"csr": csr_for(key)}), 401, "certificate"
    )

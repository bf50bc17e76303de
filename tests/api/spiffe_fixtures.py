"""A SPIFFE-initialised platform with an enrolled agent, and an in-process client that
presents that agent's mTLS identity (the certificate the TLS listener would have verified)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.agent.enrollment import build_csr
from certfleet.api import create_api_app
from certfleet.api._peer_certificate import with_client_certificate
from certfleet.app import Platform
from certfleet.x509 import KeyType, generate_private_key

TD = "example.org"


def enrol(platform: Platform, host: str, team: str = "web") -> bytes:
    minted = platform.agents.create_join_token(host, team=team, ttl=dt.timedelta(hours=1), actor="test")
    key = generate_private_key(KeyType.EC_P256)
    enrolment = platform.agents.enroll(minted.token, build_csr(key, ["certfleet-agent"]).encode())
    return enrolment.issued.certificate.public_bytes(Encoding.DER)


def svid_csr(key: ec.EllipticCurvePrivateKey | None = None, names: tuple[str, ...] = ()) -> str:
    """A CSR the way an agent makes one for an SVID key (names are ignored by the server)."""
    return build_csr(key or ec.generate_private_key(ec.SECP256R1()), list(names) or ["ignored.example"])


class AgentClient:
    """Calls the API as the agent whose identity certificate is ``der``."""

    def __init__(self, platform: Platform, der: bytes) -> None:
        self._runner = asyncio.Runner()
        app = with_client_certificate(create_api_app(platform), der)
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://certfleet.test"
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self._client.request(method, url, **kwargs))

    def get(self, url: str) -> httpx.Response:
        return self.request("GET", url)

    def post(self, url: str, body: Any) -> httpx.Response:
        return self.request("POST", url, json=body)

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()

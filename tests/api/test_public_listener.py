"""The plain-HTTP listener (OCSP, CRLs, CA certificates) as a bare ASGI app: the same answers
and caching headers as before, problem documents for bad HTTP input, and an OCSP answer that
is already in memory served on the event loop without a thread hop."""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certfleet.api import create_public_app
from certfleet.api.public import PublicApp
from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.x509 import KeyType, generate_private_key
from tests.api.conftest import assert_problem

OCSP_REQUEST = {"content-type": "application/ocsp-request"}


class Listener:
    """Synchronous calls into the public app over httpx's ASGI transport (no sockets)."""

    def __init__(self, platform: Platform) -> None:
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=create_public_app(platform))
        self._client = httpx.AsyncClient(transport=transport, base_url="http://ca.test")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self._client.request(method, url, **kwargs))

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


@pytest.fixture
def listener(platform: Platform) -> Iterator[Listener]:
    client = Listener(platform)
    yield client
    client.close()


def _request(platform: Platform, *, nonce: bytes | None = None, serial: int | None = None) -> bytes:
    key = generate_private_key(KeyType.EC_P256)
    issued = platform.issuance.issue(
        IssuanceRequest("tls-server", key.public_key(), ("public.example.test",)), actor="test"
    ).issued
    builder = ocsp.OCSPRequestBuilder()
    if serial is None:
        builder = builder.add_certificate(issued.certificate, issued.chain[0], hashes.SHA1())
    else:
        cert_id = ocsp.OCSPRequestBuilder().add_certificate(
            issued.certificate, issued.chain[0], hashes.SHA1()
        )
        parsed = cert_id.build()
        builder = builder.add_certificate_by_hash(
            parsed.issuer_name_hash, parsed.issuer_key_hash, serial, hashes.SHA1()
        )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def _get_path(request: bytes) -> str:
    return "/ocsp/" + urllib.parse.quote(base64.b64encode(request).decode(), safe="")


def test_a_remembered_answer_is_served_on_the_event_loop_on_sqlite(
    platform: Platform, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = _request(platform)
    hops: list[object] = []
    real = PublicApp._in_thread

    async def counting(app: PublicApp, func: Any, *args: Any) -> Any:
        hops.append(func)
        return await real(app, func, *args)

    monkeypatch.setattr(PublicApp, "_in_thread", counting)
    first = listener.request("POST", "/ocsp", content=request, headers=OCSP_REQUEST)
    assert first.status_code == 200 and len(hops) == 1  # signed in a worker thread
    again = listener.request("POST", "/ocsp", content=request, headers=OCSP_REQUEST)
    by_get = listener.request("GET", _get_path(request))
    assert again.content == first.content == by_get.content
    if platform.revocation.ocsp_memory_is_local:
        assert len(hops) == 1  # SQLite: both answered on the event loop, from memory
    else:
        assert len(hops) == 3  # PostgreSQL: the generation read is a round trip, in a thread
    response = ocsp.load_der_ocsp_response(by_get.content)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert by_get.headers["content-type"] == "application/ocsp-response"
    cache = by_get.headers["cache-control"]
    assert cache.startswith("max-age=") and cache.endswith(", public, no-transform, must-revalidate")
    assert {"expires", "last-modified", "etag"} <= set(by_get.headers)


def test_nonces_unknown_serials_and_malformed_requests_are_never_cached(
    platform: Platform, listener: Listener
) -> None:
    with_nonce = listener.request(
        "POST", "/ocsp/", content=_request(platform, nonce=b"\x01" * 8), headers=OCSP_REQUEST
    )
    assert with_nonce.headers["cache-control"] == "private, no-store"
    unknown = listener.request(
        "POST", "/ocsp", content=_request(platform, serial=0x5EED), headers=OCSP_REQUEST
    )
    assert ocsp.load_der_ocsp_response(unknown.content).certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    assert unknown.headers["cache-control"] == "no-store"
    for response in (
        listener.request("GET", "/ocsp"),
        listener.request("GET", "/ocsp/"),
        listener.request("GET", "/ocsp/not%ZZbase64"),
        listener.request("POST", "/ocsp", content=b"garbage", headers=OCSP_REQUEST),
    ):
        assert response.status_code == 200  # RFC 6960 appendix A.1: errors are OCSP responses
        status = ocsp.load_der_ocsp_response(response.content).response_status
        assert status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert response.headers["cache-control"] == "no-store"


def test_bad_http_input_gets_problem_documents(listener: Listener) -> None:
    assert_problem(listener.request("GET", "/nowhere"), 404, "/nowhere")
    assert_problem(listener.request("GET", "/crl/nope.crl"), 404, "nope")
    assert_problem(listener.request("GET", "/crl/a/b.crl"), 404, "a/b.crl")
    assert_problem(listener.request("GET", "/ca/nope.cer"), 404, "nope")
    refused = listener.request("DELETE", "/ocsp")
    assert_problem(refused, 405, "GET, HEAD, POST")
    assert refused.headers["allow"] == "GET, HEAD, POST"
    assert_problem(listener.request("POST", "/healthz"), 405, "GET")


def test_health_ca_material_and_crls(platform: Platform, listener: Listener) -> None:
    health = listener.request("GET", "/healthz")
    assert (health.status_code, health.text) == (200, "ok\n")
    root = listener.request("GET", "/ca/root.pem")
    assert root.headers["content-type"] == "application/x-pem-file"
    assert x509.load_pem_x509_certificate(root.content) == platform.authorities.root().certificate
    chain = listener.request("GET", "/ca/chain.pem")
    assert len(x509.load_pem_x509_certificates(chain.content)) >= 1
    issuing = platform.authorities.issuing_authority().issuer
    der = listener.request("GET", f"/ca/{issuing.id}.cer")
    assert x509.load_der_x509_certificate(der.content) == issuing.certificate
    crl = listener.request("GET", f"/crl/{issuing.id}.crl")
    assert crl.headers["content-type"] == "application/pkix-crl"
    assert x509.load_der_x509_crl(crl.content).is_signature_valid(issuing.certificate.public_key())  # type: ignore[arg-type]
    unchanged = listener.request(
        "GET", f"/crl/{issuing.id}.crl", headers={"if-none-match": crl.headers["etag"]}
    )
    assert unchanged.status_code == 304 and unchanged.content == b""
    delta = listener.request("GET", f"/crl/{issuing.id}-delta.crl")
    assert x509.load_der_x509_crl(delta.content).extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    head = listener.request("HEAD", f"/crl/{issuing.id}.crl")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(crl.content))

"""SCEP's HTTP binding (RFC 8894 section 4) on both listeners: the bare ASGI plain-HTTP app
and the HTTPS FastAPI app answer the same; a PKIOperation by GET (URL-encoded base64, and a
'+' left unencoded kept as '+') and by POST; bad HTTP input is 400 text, never a traceback;
the enrolment counter by protocol and outcome."""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certfleet.api import create_api_app, create_public_app, scep
from certfleet.app import Platform
from tests.protocols.scep.client import (
    Message,
    csr,
    envelope_aes,
    ra_certificate,
    read_cert_rep,
    rsa_key,
    self_signed,
)

Client = Callable[..., httpx.Response]


@pytest.fixture(params=["http", "https"])
def scep_http(request: pytest.FixtureRequest, platform: Platform) -> Iterator[Client]:
    runner = asyncio.Runner()
    app: Any = create_public_app(platform) if request.param == "http" else create_api_app(platform)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"{request.param}://ca.test")

    def call(method: str, query: str, **kwargs: Any) -> httpx.Response:
        return runner.run(client.request(method, f"/scep?{query}", **kwargs))

    yield call
    runner.run(client.aclose())
    runner.close()


def _message(platform: Platform, cn: str) -> tuple[bytes, x509.Certificate]:
    ra = ra_certificate(platform.scep_server.ca_certificates())
    key = rsa_key()
    password = platform.scep.create_challenge("ops", actor="test").password
    request = csr(key, cn, challenge=password).public_bytes(serialization.Encoding.DER)
    return Message("19", envelope_aes(request, ra), self_signed(key), key).build(), ra


def test_caps_and_ca_certificates_with_their_media_types(scep_http: Client) -> None:
    caps = scep_http("GET", "operation=GetCACaps")
    assert caps.status_code == 200 and "SCEPStandard" in caps.text.split()
    certs = scep_http("GET", "operation=GetCACert")
    assert certs.headers["content-type"] == "application/x-x509-ca-ra-cert"
    next_certs = scep_http("GET", "operation=GetNextCACert")
    assert next_certs.headers["content-type"] == "application/x-x509-next-ca-cert"


@pytest.mark.parametrize("encode", [True, False], ids=["url-encoded", "plus-left-raw"])
def test_pki_operation_by_get(scep_http: Client, platform: Platform, encode: bool) -> None:
    message, ra = _message(platform, "get.example.test")
    text = base64.b64encode(message).decode()
    value = urllib.parse.quote(text, safe="") if encode else text.replace("=", "%3D")
    response = scep_http("GET", f"operation=PKIOperation&message={value}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-pki-message"
    assert read_cert_rep(response.content, ra).status == "0"


def test_pki_operation_by_post(scep_http: Client, platform: Platform) -> None:
    message, ra = _message(platform, "post.example.test")
    response = scep_http("POST", "operation=PKIOperation", content=message)
    assert read_cert_rep(response.content, ra).status == "0"


@pytest.mark.parametrize(
    ("method", "query", "content"),
    [
        ("GET", "operation=Nope", None),
        ("GET", "operation=PKIOperation", None),
        ("GET", "operation=PKIOperation&message=bm90IGEgbWVzc2FnZQ%3D%3D", None),
        ("POST", "operation=PKIOperation", b"\x30\x82\x01"),
    ],
)
def test_bad_http_input_is_400_text(
    scep_http: Client, method: str, query: str, content: bytes | None
) -> None:
    response = scep_http(method, query, content=content)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")


def test_enrolments_are_counted_by_protocol_and_outcome(scep_http: Client, platform: Platform) -> None:
    message, ra = _message(platform, "count.example.test")
    scep_http("POST", "operation=PKIOperation", content=message)
    scep_http("POST", "operation=PKIOperation", content=b"garbage")
    # A refusal is counted under its failInfo: an unknown challenge (twice) is badRequest, a
    # signature that does not verify badMessageCheck.
    key = rsa_key()
    for challenge in ("0123456789ab-" + "0" * 32, "nope"):
        request = csr(key, "refused.example.test", challenge=challenge)
        envelope = envelope_aes(request.public_bytes(serialization.Encoding.DER), ra)
        refused = Message("19", envelope, self_signed(key), key).build()
        scep_http("POST", "operation=PKIOperation", content=refused)
    tampered = Message("19", envelope_aes(b"\x30\x00", ra), self_signed(key), key).build(tamper=True)
    scep_http("POST", "operation=PKIOperation", content=tampered)
    exposition = platform.metrics.exposition(None).decode()
    assert 'certfleet_enrolments_total{outcome="issued",protocol="scep"} 1.0' in exposition
    assert 'certfleet_enrolments_total{outcome="malformed",protocol="scep"} 1.0' in exposition
    assert 'certfleet_enrolments_total{outcome="badRequest",protocol="scep"} 2.0' in exposition
    assert 'certfleet_enrolments_total{outcome="badMessageCheck",protocol="scep"} 1.0' in exposition


def test_get_ca_cert_waits_for_the_ra_once_then_is_answered_without_a_worker_thread(
    scep_http: Client, platform: Platform
) -> None:
    # Before the RA is loaded (its files read, or it is issued) GetCACert needs the disk
    # and the database: no answer on the event loop, the worker thread answers it.
    assert scep.answer_at_once(platform.scep_server, {"operation": "GetCACert"}) is None
    first = scep_http("GET", "operation=GetCACert")
    at_once = scep.answer_at_once(platform.scep_server, {"operation": "GetCACert"})
    assert at_once is not None and (at_once.status, at_once.body) == (200, first.content)
    again = scep_http("GET", "operation=GetCACert")
    assert (again.content, again.headers["content-type"]) == (first.content, "application/x-x509-ca-ra-cert")
    caps = scep.answer_at_once(platform.scep_server, {"operation": "GetCACaps"})
    assert caps is not None and caps.body == scep_http("GET", "operation=GetCACaps").content
    # A PKIOperation is never answered on the event loop.
    assert scep.answer_at_once(platform.scep_server, {"operation": "PKIOperation", "message": "x"}) is None

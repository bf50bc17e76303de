"""What relying parties read: the SPIFFE trust bundle (federation), the OIDC discovery
document and JWKS that verify JWT-SVIDs (with PyJWT, an independent verifier), on the HTTPS
and the plain-HTTP listeners; the JWT keys' rotation with overlap; and an entry's SVIDs
revoked on the SPIFFE CA's CRL and OCSP."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certfleet.app import Platform
from certfleet.ca import SPIFFE_ROLE
from certfleet.services.spiffe_keys import MAX_JWT_TTL, PUBLISH_AHEAD, ROTATE_EVERY
from certfleet.x509 import KeyType
from tests.api.conftest import ApiClient, assert_problem
from tests.api.spiffe_fixtures import TD, AgentClient, enrol, svid_csr
from tests.api.test_public_listener import Listener  # the plain-HTTP listener, in process
from tests.conftest import FakeClock, make_platform

AGENT = "/api/v1/agent/spiffe"
BASE = "https://certfleet.example.org"


@pytest.fixture
def spiffe_platform(data_dir: Any, db_url: str, clock: FakeClock) -> Iterator[Platform]:
    platform = make_platform(data_dir, db_url, clock, base_url=BASE)
    platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
    platform.spiffe.initialize(TD, actor="test")
    yield platform
    platform.close()


@pytest.fixture
def agent(spiffe_platform: Platform) -> Iterator[AgentClient]:
    client = AgentClient(spiffe_platform, enrol(spiffe_platform, "host1"))
    yield client
    client.close()


@pytest.fixture
def plain(spiffe_platform: Platform) -> Iterator[Listener]:
    client = Listener(spiffe_platform)
    yield client
    client.close()


def _entry(platform: Platform) -> str:
    return platform.spiffe.entries.create(
        f"spiffe://{TD}/ns/app", f"spiffe://{TD}/agent/host1", ["unix:uid:1000"], actor="test"
    ).id


def test_bundle_is_a_spiffe_bundle_on_both_listeners(spiffe_platform: Platform, plain: Listener) -> None:
    api = ApiClient(spiffe_platform)
    try:
        https = api.get("/spiffe/bundle")
    finally:
        api.close()
    http = plain.request("GET", "/spiffe/bundle")
    assert https.status_code == http.status_code == 200
    assert http.headers["content-type"] == "application/json"
    bundle = http.json()
    assert bundle == https.json()
    assert bundle["spiffe_sequence"] >= 1 and bundle["spiffe_refresh_hint"] == 300
    x509_keys = [k for k in bundle["keys"] if k["use"] == "x509-svid"]
    jwt_keys = [k for k in bundle["keys"] if k["use"] == "jwt-svid"]
    (authority,) = x509_keys
    root = x509.load_der_x509_certificate(base64.b64decode(authority["x5c"][0]))
    assert root == spiffe_platform.authorities.root().certificate
    assert (authority["kty"], authority["crv"]) == ("EC", "P-256")
    (jwt_key,) = jwt_keys
    assert {"kid", "kty", "crv", "x", "y"} <= set(jwt_key)
    assert plain.request("HEAD", "/spiffe/bundle").content == b""
    assert_problem(plain.request("POST", "/spiffe/bundle"), 405, "GET, HEAD")


def test_jwt_svid_verifies_through_oidc_discovery_with_pyjwt(
    spiffe_platform: Platform, agent: AgentClient, plain: Listener
) -> None:
    entry_id = _entry(spiffe_platform)
    response = agent.post(f"{AGENT}/jwt-svids", {"entry_id": entry_id, "audience": ["payments"]})
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert response.json()["spiffe_id"] == f"spiffe://{TD}/ns/app"
    # A relying party: discovery, then the JWKS it names, then an off-the-shelf verifier.
    discovery = plain.request("GET", "/.well-known/openid-configuration").json()
    assert discovery["issuer"] == BASE
    assert discovery["jwks_uri"] == f"{BASE}/spiffe/jwks"
    assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]
    jwks = plain.request("GET", "/spiffe/jwks").json()
    kid = pyjwt.get_unverified_header(token)["kid"]
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == kid]
    assert (jwk["use"], jwk["alg"]) == ("sig", "ES256")
    key = pyjwt.PyJWK(jwk).key
    claims = pyjwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience="payments",
        issuer=discovery["issuer"],
        options={"verify_exp": False, "verify_iat": False},  # the platform's clock is fake
    )
    assert claims["sub"] == f"spiffe://{TD}/ns/app"
    with pytest.raises(pyjwt.InvalidAudienceError):
        pyjwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience="billing",
            options={"verify_exp": False, "verify_iat": False},
        )


def test_jwt_svid_request_is_checked(spiffe_platform: Platform, agent: AgentClient) -> None:
    entry_id = _entry(spiffe_platform)
    assert agent.post(f"{AGENT}/jwt-svids", {"entry_id": entry_id, "audience": []}).status_code == 422
    assert_problem(
        agent.post(f"{AGENT}/jwt-svids", {"entry_id": entry_id, "audience": [" "]}),
        400,
        "1 to 200 characters",
    )


def test_jwt_keys_rotate_with_overlap(
    spiffe_platform: Platform, agent: AgentClient, clock: FakeClock
) -> None:
    """The successor is published before it signs; the old key stays until its last token
    has expired; then it leaves the bundle, and the bundle's sequence moved each time."""
    entry_id = _entry(spiffe_platform)
    service = spiffe_platform.spiffe

    def kid_of_new_token() -> str:
        token = agent.post(f"{AGENT}/jwt-svids", {"entry_id": entry_id, "audience": ["a"]}).json()["token"]
        return str(pyjwt.get_unverified_header(token)["kid"])

    def published() -> list[str]:
        return sorted(k["kid"] for k in service.bundle()["keys"] if k["use"] == "jwt-svid")

    first = kid_of_new_token()
    sequence = service.bundle()["spiffe_sequence"]
    assert published() == [first]
    clock.advance(ROTATE_EVERY - PUBLISH_AHEAD + dt.timedelta(minutes=1))
    assert kid_of_new_token() == first  # still the signer...
    keys = published()
    assert len(keys) == 2 and first in keys  # ...but its successor is already published
    second = next(k for k in keys if k != first)
    assert service.bundle()["spiffe_sequence"] > sequence
    clock.advance(PUBLISH_AHEAD)
    assert kid_of_new_token() == second
    assert published() == sorted([first, second])  # tokens of the first are still valid
    clock.advance(MAX_JWT_TTL)
    assert published() == [second]


def _ocsp_status(plain: Listener, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    response = plain.request(
        "POST",
        "/ocsp",
        content=request.public_bytes(Encoding.DER),
        headers={"content-type": "application/ocsp-request"},
    )
    return ocsp.load_der_ocsp_response(response.content).certificate_status


def test_revoked_svids_are_on_the_spiffe_cas_crl_and_ocsp(
    spiffe_platform: Platform, agent: AgentClient, plain: Listener
) -> None:
    entry_id = _entry(spiffe_platform)
    certs = []
    for _ in range(2):
        body = agent.post(
            f"{AGENT}/x509-svids", {"requests": [{"entry_id": entry_id, "csr": svid_csr()}]}
        ).json()
        certs.append(x509.load_pem_x509_certificate(body["svids"][0]["certificate"].encode()))
    issuer = x509.load_pem_x509_certificates(body["svids"][0]["chain"].encode())[0]
    (spiffe_ca,) = [c for c in spiffe_platform.authorities.hierarchy() if c.role == SPIFFE_ROLE]
    assert all(_ocsp_status(plain, c, issuer) is ocsp.OCSPCertStatus.GOOD for c in certs)
    api = ApiClient(spiffe_platform)
    try:
        token = api.token("ops", "admin")
        revoked = api.post(
            f"/api/v1/spiffe/entries/{entry_id}/revoke", token=token, json={"reason": "keyCompromise"}
        )
    finally:
        api.close()
    assert revoked.status_code == 200, revoked.text
    assert sorted(revoked.json()["revoked"]) == sorted(format(c.serial_number, "x") for c in certs)
    assert all(_ocsp_status(plain, c, issuer) is ocsp.OCSPCertStatus.REVOKED for c in certs)
    crl = x509.load_der_x509_crl(plain.request("GET", f"/crl/{spiffe_ca.id}.crl").content)
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    assert {c.serial_number for c in certs} <= {r.serial_number for r in crl}
    record = spiffe_platform.spiffe.entries.record(entry_id)
    assert (record.svids_issued, record.live_svids) == (2, 0)


def test_public_documents_are_404_before_spiffe_init(platform: Platform) -> None:
    client = Listener(platform)
    try:
        for path in ("/spiffe/bundle", "/spiffe/jwks", "/.well-known/openid-configuration"):
            assert_problem(client.request("GET", path), 404, "not initialised")
    finally:
        client.close()

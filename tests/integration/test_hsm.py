"""CA keys in a SoftHSM2 token behind a real ``certfleet serve``: issuance, revocation, CRL
and OCSP signed in the token and checked with cryptography; ``ca rotate``; the token taken
away mid-run (issuance 503, /healthz and the metric say so) and brought back (the same keys
sign again, the audit chain intact)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from tests.ca.keys.test_pkcs11 import MODULE, PIN, init_token, token_private_keys
from tests.integration.test_serve import Server, certfleet

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not MODULE.exists(), reason="SoftHSM2 (Debian softhsm2) is not installed"),
]

LABEL = "certfleet-ca"


@dataclass
class Hsm:
    server: Server
    tokens: Path
    token: str  # an admin API token
    root: x509.Certificate

    def client(self) -> httpx.Client:
        return httpx.Client(verify=False, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def issue(self, client: httpx.Client, name: str) -> httpx.Response:
        return client.post(
            f"{self.server.https}/api/v1/certificates", json={"key_type": "ec-p256", "sans": [name]}
        )

    def issuer_of(self, issued: dict[str, Any]) -> x509.Certificate:
        return x509.load_pem_x509_certificates(issued["chain_pem"].encode())[0]


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hsm]:
    base = tmp_path_factory.mktemp("hsm")
    env = init_token(base, LABEL)
    pin_file = base / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    data_dir = base / "data"
    with pytest.MonkeyPatch.context() as patch:
        # The certfleet processes find the token through SoftHSM2's configuration file.
        patch.setenv("SOFTHSM2_CONF", env["SOFTHSM2_CONF"])
        certfleet(
            "init",
            "--data-dir",
            str(data_dir),
            "--key-backend",
            "pkcs11",
            "--pkcs11-module",
            str(MODULE),
            "--token-label",
            LABEL,
            "--pin-file",
            str(pin_file),
        )
        config = data_dir / "config.toml"
        # A lost token is retried on the very next use: the test needs no waiting.
        config.write_text(config.read_text() + "retry_seconds = 0\n")
        token = certfleet(
            "token", "create", "--team", "ops", "--scope", "admin", "--data-dir", str(data_dir)
        ).stdout.strip()
        server = Server(data_dir, extra=["--workers", "1"])
        server.start()
        try:
            root = x509.load_pem_x509_certificate(httpx.get(f"{server.http}/ca/root.pem").content)
            yield Hsm(server, base / "tokens", token, root)
        finally:
            server.stop()


def test_issue_revoke_crl_and_ocsp_are_signed_in_the_token(hsm: Hsm) -> None:
    with hsm.client() as client:
        # Given a certificate issued over REST
        response = hsm.issue(client, "hsm.example.test")
        assert response.status_code == 201, response.text
        issued = response.json()
        leaf = x509.load_pem_x509_certificate(issued["certificate_pem"].encode())
        intermediate = hsm.issuer_of(issued)
        # Then the chain up to the root verifies (every signature made in the token)
        leaf.verify_directly_issued_by(intermediate)
        intermediate.verify_directly_issued_by(hsm.root)
        hsm.root.verify_directly_issued_by(hsm.root)
        # When it is revoked
        serial = issued["certificate"]["serial"]
        revoked = client.post(
            f"{hsm.server.https}/api/v1/revocations", json={"serial": serial, "reason": "superseded"}
        )
        assert revoked.status_code in (200, 201), revoked.text
    # Then the CRL lists it and verifies against the issuing CA
    ca_id = revoked.json()["issuer_ca_id"]
    crl = x509.load_der_x509_crl(httpx.get(f"{hsm.server.http}/crl/{ca_id}.crl").content)
    assert crl.is_signature_valid(intermediate.public_key())
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    # And OCSP says revoked, signed by a responder whose key is in the token too
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, intermediate, hashes.SHA256()).build()
    answer = httpx.post(
        f"{hsm.server.http}/ocsp",
        content=request.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
    )
    response_ocsp = ocsp.load_der_ocsp_response(answer.content)
    assert response_ocsp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response_ocsp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    responder = response_ocsp.certificates[0] if response_ocsp.certificates else intermediate
    if responder is not intermediate:
        responder.verify_directly_issued_by(intermediate)
    public = responder.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert response_ocsp.signature_hash_algorithm is not None
    public.verify(
        response_ocsp.signature,
        response_ocsp.tbs_response_bytes,
        ec.ECDSA(response_ocsp.signature_hash_algorithm),
    )


def test_ca_rotate_makes_the_new_key_in_the_token(hsm: Hsm) -> None:
    with hsm.client() as client:
        rotated = client.post(f"{hsm.server.https}/api/v1/cas/rotate", json={})
        assert rotated.status_code == 200, rotated.text
        new_id = rotated.json()["new_ca"]["id"]
        response = hsm.issue(client, "after-rotation.example.test")
        assert response.status_code == 201, response.text
    issued = response.json()
    assert issued["certificate"]["issuer_ca_id"] == new_id
    intermediate = hsm.issuer_of(issued)
    x509.load_pem_x509_certificate(issued["certificate_pem"].encode()).verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(hsm.root)
    # Every private key certfleet made is in the token, none extractable, none on disk.
    listing = token_private_keys(LABEL)
    keys = listing.count("Private Key Object")
    assert keys >= 4  # root, issuing 1 and 2, server identity (and OCSP responders)
    assert listing.count("never extractable") == keys
    assert not list(hsm.server.data_dir.glob("keys/*.key.pem"))


def _metric(client: httpx.Client, hsm: Hsm) -> str:
    text = client.get(f"{hsm.server.https}/metrics").text
    return next(line for line in text.splitlines() if line.startswith("certfleet_key_backend_up{"))


def test_a_removed_token_stops_issuance_until_it_returns(hsm: Hsm) -> None:
    with hsm.client() as client:
        assert hsm.issue(client, "before.example.test").status_code == 201
        # When the token disappears (SoftHSM2's token directory moved away)
        away = hsm.tokens.with_name("tokens.away")
        hsm.tokens.rename(away)
        try:
            # Then issuance fails closed with a 503 problem, and health and metrics say so
            refused = hsm.issue(client, "during.example.test")
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert LABEL in refused.json()["detail"]
            health = client.get(f"{hsm.server.https}/healthz")
            assert health.status_code == 503
            assert LABEL in health.text
            assert _metric(client, hsm) == 'certfleet_key_backend_up{backend="pkcs11"} 0.0'
        finally:
            away.rename(hsm.tokens)
        # When it comes back, the same keys sign again
        response = hsm.issue(client, "after.example.test")
        assert response.status_code == 201, response.text
        hsm.issuer_of(response.json()).verify_directly_issued_by(hsm.root)
        x509.load_pem_x509_certificate(response.json()["certificate_pem"].encode()).verify_directly_issued_by(
            hsm.issuer_of(response.json())
        )
        assert client.get(f"{hsm.server.https}/healthz").status_code == 200
        assert _metric(client, hsm) == 'certfleet_key_backend_up{backend="pkcs11"} 1.0'
        # And the audit chain is intact (the service's `audit verify`)
        verified = client.post(f"{hsm.server.https}/api/v1/audit/verify", json={}).json()
        assert verified["ok"] is True, verified
        assert verified["entries"] > 0
    assert "Traceback" not in hsm.server.stderr

"""POST /api/v1/certificates: issuance from a CSR or a server-generated key, and every refusal."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from certfleet.api._schemas import CertificateOut, IssueResponse
from tests.api.conftest import CERTS, ApiClient, assert_problem, make_csr, stored_rows


def _load(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def _sans(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )


def test_issue_from_csr_signs_its_key_and_names(api: ApiClient, admin: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = make_csr(["www.example.test", "api.example.test"], "www.example.test", key)

    response = api.post(CERTS, token=admin, json={"csr": csr, "validity_days": 30})

    assert response.status_code == 201, response.text
    body = response.json()
    cert = _load(body["certificate_pem"])[0]
    issuing = _load(body["chain_pem"])[0]
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(issuing)
    assert _sans(cert) == ["www.example.test", "api.example.test"]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.test"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days in (30, 31)  # backdated start
    assert _load(body["fullchain_pem"]) == [cert, *_load(body["chain_pem"])]
    assert body["private_key_pem"] is None
    record = body["certificate"]
    assert record["serial"] == format(cert.serial_number, "x")
    assert record["profile"] == "tls-server" and record["source"] == "issued"
    assert record["team"] == "ops" and record["status"] == "active"
    assert response.headers["location"] == f"{CERTS}/{record['serial']}"
    assert response.headers["cache-control"] == "no-store"
    assert api.get(response.headers["location"], token=admin).json() == record
    # written without a pydantic round trip, the body still has exactly the documented shape
    assert set(body) == set(IssueResponse.model_fields)
    assert set(record) == set(CertificateOut.model_fields)
    IssueResponse.model_validate(body)
    assert response.headers["content-type"] == "application/json"


def test_issue_with_generated_key_returns_the_key_once(api: ApiClient, admin: str) -> None:
    response = api.post(
        CERTS,
        token=admin,
        json={"key_type": "ec-p384", "sans": ["db.example.test", "10.0.0.7"], "profile": "tls-server-client"},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    cert = _load(body["certificate_pem"])[0]
    key = serialization.load_pem_private_key(body["private_key_pem"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    assert key.public_key() == cert.public_key()
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert response.headers["cache-control"] == "no-store"
    # Nothing else ever hands the key out again: the stored record has no key field.
    shown = api.get(f"{CERTS}/{body['certificate']['serial']}", token=admin).json()
    assert "PRIVATE KEY" not in str(shown)
    assert not any("key_pem" in field for field in shown)


def test_explicit_sans_replace_the_csr_names(api: ApiClient, admin: str) -> None:
    csr = make_csr(["ignored.example.test"], "ignored.example.test")

    response = api.post(CERTS, token=admin, json={"csr": csr, "sans": ["chosen.example.test"]})

    assert response.status_code == 201, response.text
    assert _sans(_load(response.json()["certificate_pem"])[0]) == ["chosen.example.test"]
    assert response.json()["certificate"]["common_name"] is None


def test_tags_are_recorded(api: ApiClient, admin: str) -> None:
    response = api.post(
        CERTS, token=admin, json={"key_type": "ec-p256", "sans": ["t.example.test"], "tags": ["web", "prod"]}
    )

    assert response.status_code == 201, response.text
    assert response.json()["certificate"]["tags"] == ["web", "prod"]


def _csr_der_with_bad_signature() -> str:
    der = bytearray(x509.load_pem_x509_csr(make_csr().encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature value: the structure still parses
    b64 = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{b64}-----END CERTIFICATE REQUEST-----\n"


def _csr_with_unparsable_san() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    raw_san = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x82\x05ab")
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).add_extension(raw_san, False)
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def dsa_csr() -> str:
    return make_csr(key=dsa.generate_private_key(2048))  # type: ignore[arg-type]


REFUSALS: list[tuple[str, Any, int, str]] = [
    ("malformed CSR", {"csr": "not a CSR"}, 400, "malformed CSR"),
    (
        "truncated PEM",
        {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"},
        400,
        "malformed CSR",
    ),
    ("bad CSR signature", {"csr": _csr_der_with_bad_signature()}, 400, "CSR signature does not verify"),
    ("unparsable CSR SAN", {"csr": _csr_with_unparsable_san()}, 400, "malformed CSR extension"),
    (
        "weak RSA key",
        {"csr": make_csr(key=rsa.generate_private_key(65537, 1024))},
        400,
        "RSA key of 1024 bits is too small",
    ),
    (
        "odd EC curve",
        {"csr": make_csr(key=ec.generate_private_key(ec.SECP256K1()))},
        400,
        "EC curve secp256k1 is not allowed",
    ),
    ("empty label", {"key_type": "ec-p256", "sans": ["a..example.test"]}, 400, "has an empty label"),
    ("illegal character", {"key_type": "ec-p256", "sans": ["ex_ample.test"]}, 400, "illegal characters"),
    (
        "non-leftmost wildcard",
        {"key_type": "ec-p256", "sans": ["www.*.example.test"]},
        400,
        "wildcard that is not the leftmost label",
    ),
    ("double wildcard", {"key_type": "ec-p256", "sans": ["*.*.example.test"]}, 400, "wildcard"),
    ("partial wildcard", {"key_type": "ec-p256", "sans": ["w*.example.test"]}, 400, "partial wildcard"),
    (
        "name too long",
        {"key_type": "ec-p256", "sans": [".".join(["a" * 60] * 5) + ".test"]},
        400,
        "longer than 253 bytes",
    ),
    (
        "too many names",
        {"key_type": "ec-p256", "sans": [f"h{i}.example.test" for i in range(101)]},
        400,
        "101 subject alternative names given; at most 100",
    ),
    (
        "CN not a SAN",
        {"key_type": "ec-p256", "sans": ["a.example.test"], "common_name": "b.example.test"},
        400,
        "common name 'b.example.test' is not one of the subject alternative names",
    ),
    ("no names", {"key_type": "ec-p256"}, 400, "requires at least one DNS name or IP address"),
    (
        "unknown profile",
        {"key_type": "ec-p256", "sans": ["a.example.test"], "profile": "code-signing"},
        400,
        "unknown profile 'code-signing'",
    ),
    (
        "validity too long",
        {"key_type": "ec-p256", "sans": ["a.example.test"], "validity_days": 399},
        400,
        "validity of 399 days exceeds profile tls-server's maximum of 398 days",
    ),
    (
        "validity zero",
        {"key_type": "ec-p256", "sans": ["a.example.test"], "validity_days": 0},
        422,
        "validity_days: Input should be greater than or equal to 1",
    ),
    (
        "validity absurd",
        {"key_type": "ec-p256", "sans": ["a.example.test"], "validity_days": 10**12},
        422,
        "validity_days: Input should be less than or equal to",
    ),
    (
        "validity as text",
        {"key_type": "ec-p256", "sans": ["a.example.test"], "validity_days": "30"},
        422,
        "validity_days: Input should be a valid integer",
    ),
    (
        "both csr and key_type",
        {"csr": make_csr(), "key_type": "ec-p256"},
        400,
        "give exactly one of csr or key_type",
    ),
    ("neither csr nor key_type", {"sans": ["a.example.test"]}, 400, "give exactly one of csr or key_type"),
    (
        "unknown field",
        {"key_type": "ec-p256", "sans": ["a.example.test"], "colour": "blue"},
        422,
        "unknown field 'colour'",
    ),
    (
        "unknown key type",
        {"key_type": "rsa-1024", "sans": ["a.example.test"]},
        400,
        "unknown key type 'rsa-1024'",
    ),
    (
        "Ed25519 server key",
        {"key_type": "ed25519", "sans": ["a.example.test"]},
        400,
        "Ed25519 keys are not allowed for this profile",
    ),
    ("not an object", [], 422, "request body: Input should be a valid dictionary"),
]


@pytest.mark.parametrize(
    ("body", "status", "detail"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refusals_are_precise_problems_and_record_nothing(
    api: ApiClient, admin: str, body: Any, status: int, detail: str
) -> None:
    response = api.post(CERTS, token=admin, json=body)

    assert_problem(response, status, detail)
    assert stored_rows(api.platform, "certificates") == 0
    assert stored_rows(api.platform, "serials") == 0


def test_dsa_key_is_refused(api: ApiClient, admin: str, dsa_csr: str) -> None:
    assert_problem(api.post(CERTS, token=admin, json={"csr": dsa_csr}), 400, "DSA keys are not supported")
    assert stored_rows(api.platform, "certificates") == 0


def test_malformed_json_is_400(api: ApiClient, admin: str) -> None:
    response = api.post(CERTS, token=admin, content=b'{"csr": ', headers={"content-type": "application/json"})

    assert_problem(response, 400, "request body is not valid JSON")


def test_a_profile_refusal_is_audited(api: ApiClient, admin: str) -> None:
    api.post(
        CERTS, token=admin, json={"key_type": "ec-p256", "sans": ["a.example.test"], "validity_days": 500}
    )

    refused = [e for e in api.platform.audit.entries() if e.action == "certificate.refused"]
    assert len(refused) == 1
    assert "500 days" in str(refused[0].details)

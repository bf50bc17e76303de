"""POST /api/v1/inventory/import: ``inventory import`` over HTTP for admin tokens, one outcome
per file, with a body bound of its own (a multiple of the app's); and the OpenAPI document
lists every endpoint of issue 20's second half with schemas and examples."""

from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certfleet.api._body_limit import DEFAULT_BODY_BYTES, IMPORT_BODY_FACTOR
from certfleet.inventory import CertificateQuery
from tests.api.conftest import ApiClient, assert_problem, stored_rows

IMPORT = "/api/v1/inventory/import"


def foreign_pem(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _file(name: str, data: bytes) -> dict[str, str]:
    return {"name": name, "content_base64": base64.b64encode(data).decode()}


def test_import_is_admin_only(api: ApiClient) -> None:
    body = {"files": [_file("a.pem", foreign_pem("a.example.test"))]}
    for scope in ("read", "issue"):
        refused = api.post(IMPORT, token=api.token("web", scope, ["*.example.test"]), json=body)
        assert_problem(refused, 403, "admin is required")
    assert stored_rows(api.platform, "certificates") == 0


def test_one_outcome_per_file_and_bad_files_are_not_fatal(api: ApiClient, admin: str) -> None:
    a, b = foreign_pem("a.example.test"), foreign_pem("b.example.test")
    body = {
        "team": "web",
        "files": [_file("bundle.pem", a + b), _file("junk.pem", b"hello"), _file("again.pem", a)],
    }
    answer = api.post(IMPORT, token=admin, json=body)
    assert answer.status_code == 200, answer.text
    outcomes = answer.json()
    assert [(o["source"], o["added"], o["duplicates"]) for o in outcomes] == [
        ("bundle.pem", 2, 0),
        ("junk.pem", 0, 0),
        ("again.pem", 0, 1),
    ]
    assert outcomes[0]["error"] is None and outcomes[2]["error"] is None
    assert outcomes[1]["error"].startswith("junk.pem: not a valid PEM or DER certificate")
    records = api.platform.inventory.query(CertificateQuery())
    assert {(r.source.value, r.team) for r in records} == {("imported", "web")}
    assert len(records) == 2

    assert_problem(api.post(IMPORT, token=admin, json={"files": []}), 422, "files")
    bad = {"files": [{"name": "x.pem", "content_base64": "***"}]}
    assert_problem(
        api.post(IMPORT, token=admin, json=bad), 400, "files[0].content_base64 ('x.pem') is not base64"
    )


def test_the_import_body_bound_is_a_multiple_of_the_app_limit(api: ApiClient, admin: str) -> None:
    pem = foreign_pem("big.example.test")
    # Over the app's 1 MiB default (padding PEM may carry) but under the import's bound: accepted.
    padded = pem + b"\n" * (DEFAULT_BODY_BYTES + 1000)
    accepted = api.post(IMPORT, token=admin, json={"files": [_file("big.pem", padded)]})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()[0]["added"] == 1

    limit = DEFAULT_BODY_BYTES * IMPORT_BODY_FACTOR
    too_big = b"\n" * limit
    refused = api.post(IMPORT, token=admin, json={"files": [_file("huge.pem", too_big)]})
    assert_problem(refused, 413, f"exceeds the limit of {limit} bytes for POST {IMPORT}")
    # Every other route keeps the app's bound.
    other = api.post("/api/v1/cas/rotate", token=admin, json={"key_type": "x" * DEFAULT_BODY_BYTES})
    assert_problem(other, 413, f"exceeds the limit of {DEFAULT_BODY_BYTES} bytes")


ISSUE20_B_PATHS = {
    "/api/v1/cas": {"get"},
    "/api/v1/cas/{ca_id}": {"get"},
    "/api/v1/cas/rotate": {"post"},
    "/api/v1/cas/{ca_id}/compromise": {"post"},
    "/api/v1/acme/eab-keys": {"get", "post"},
    "/api/v1/acme/eab-keys/{kid}": {"delete"},
    "/api/v1/acme/renewal-overrides": {"get", "post"},
    "/api/v1/acme/renewal-overrides/{serial}": {"delete"},
    "/api/v1/audit": {"get"},
    "/api/v1/audit/verify": {"post"},
    "/api/v1/inventory/import": {"post"},
}


def test_openapi_lists_every_endpoint_with_schemas_and_examples(api: ApiClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path, methods in ISSUE20_B_PATHS.items():
        assert path in document["paths"], path
        for method in methods:
            operation = document["paths"][path][method]
            assert operation["summary"], (path, method)
            assert "403" in operation["responses"], (path, method)
            answer = operation["responses"].get("200") or operation["responses"]["201"]
            ref = answer["content"]["application/json"]["schema"]
            ref = ref.get("items", ref)["$ref"].rsplit("/", 1)[1]
            assert schemas[ref].get("examples"), (path, method, ref)
            if "requestBody" in operation:
                body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert schemas[body.rsplit("/", 1)[1]].get("examples"), (path, method)

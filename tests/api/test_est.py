"""EST over the HTTPS app, in process (httpx over ASGI), on SQLite and PostgreSQL: Basic
credentials and TLS client certificates (put in the request scope as the listener does),
issuance through the one issuance service, and refusals that record nothing."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, NameOID
from sqlalchemy import inspect, text

from certfleet.api import create_api_app
from certfleet.api._peer_certificate import with_client_certificate
from certfleet.app import Platform, server_identity
from certfleet.ca import IssuanceRequest
from certfleet.inventory import CertificateRecord, Source
from certfleet.x509 import KeyType, serial_hex
from tests.api.conftest import CERTS, ApiClient, make_csr, stored_rows
from tests.conftest import FakeClock, make_platform
from tests.protocols.est.test_key_package import ASYMMETRIC_DECRYPT_KEY_ID, DECRYPT_KEY_ID, open_key_package
from tests.services.snapshot import audit_actions

EST = "/.well-known/est"
TLS_1_2 = 0x0303
TLS_1_3 = 0x0304
PKCS10 = {"Content-Type": "application/pkcs10"}


class EstClient:
    """The HTTPS app as one TLS connection presents it: an optional client certificate, the
    TLS version and (below 1.3) the connection's tls-unique value."""

    def __init__(
        self,
        platform: Platform,
        *,
        certificate: x509.Certificate | None = None,
        tls_version: int = TLS_1_3,
        tls_unique: bytes | None = None,
    ) -> None:
        der = certificate.public_bytes(serialization.Encoding.DER) if certificate else None
        app = with_client_certificate(
            create_api_app(platform), der, tls_version=tls_version, tls_unique=tls_unique
        )
        self._runner = asyncio.Runner()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://certfleet.test"
        )

    def get(self, path: str) -> httpx.Response:
        return self._runner.run(self._client.get(path))

    def post(self, path: str, body: bytes, *, basic: str | None = None, **headers: str) -> httpx.Response:
        sent = {**PKCS10, **headers}
        if basic is not None:
            sent["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
        return self._runner.run(self._client.post(path, content=body, headers=sent))

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


@pytest.fixture
def est(platform: Platform) -> Iterator[EstClient]:
    client = EstClient(platform)
    yield client
    client.close()


def csr_body(
    names: Sequence[str] = ("dev.example.test",),
    common_name: str | None = "",
    key: CertificateIssuerPrivateKeyTypes | None = None,
    challenge: bytes | None = None,
) -> bytes:
    """A CSR as an EST client sends it: base64 DER in 76-character lines. The CN is the
    first name unless given (None: no CN)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    if common_name == "":
        common_name = names[0] if names else None
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    if challenge is not None:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge)
    csr = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))


def certificates_of(response: httpx.Response) -> list[x509.Certificate]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    assert response.headers["content-transfer-encoding"] == "base64"
    return pkcs7.load_der_pkcs7_certificates(base64.b64decode(response.content))


def dns_names(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


def refused(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert detail in response.text, response.text


def nothing_recorded(platform: Platform) -> None:
    assert stored_rows(platform, "certificates") == 0
    assert stored_rows(platform, "serials") == 0


def everything_stored(platform: Platform) -> str:
    """Every row of every table, as text (bytes as hex), to look for what must not be there."""
    with platform.database.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
        rows = [row for table in tables for row in conn.execute(text(f'SELECT * FROM "{table}"'))]
    return "\n".join(
        " ".join(value.hex() if isinstance(value, bytes | memoryview) else str(value) for value in row)
        for row in rows
    )


def enrolments(platform: Platform) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for metric in platform.metrics.requests.enrolments.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["protocol"] == "est"
    }


def record_of(platform: Platform, certificate: x509.Certificate) -> CertificateRecord:
    return platform.inventory.find(serial_hex(certificate.serial_number))


def credential(platform: Platform, team: str = "iot", **kwargs: Any) -> str:
    return platform.est.create_credential(team, actor="test", **kwargs).basic


# -- simpleenroll ---------------------------------------------------------------------------


def test_simpleenroll_issues_through_the_issuance_service_under_the_credentials_team(
    platform: Platform, est: EstClient
) -> None:
    basic = credential(platform, "iot")
    (issued,) = certificates_of(est.post(f"{EST}/simpleenroll", csr_body(), basic=basic))
    assert dns_names(issued) == ["dev.example.test"]
    record = record_of(platform, issued)
    assert record.team == "iot"
    assert record.source is Source.EST
    assert record.profile == "tls-server-client"  # clientAuth: it can re-enrol over TLS
    assert audit_actions(platform.database)[-1] == "certificate.issued"
    (entry,) = [e for e in platform.audit.entries() if e.action == "certificate.issued"]
    assert entry.actor == f"est:{basic.split(':')[0].removeprefix('est_')}"
    assert enrolments(platform) == {"issued": 1.0}
    api = ApiClient(platform)  # the REST inventory shows it as it shows every other source
    try:
        shown = api.get(f"{CERTS}/{record.serial}", token=api.token("ops", "admin"))
    finally:
        api.close()
    assert shown.status_code == 200, shown.text
    assert (shown.json()["source"], shown.json()["team"]) == ("est", "iot")


def test_cacerts_is_the_issuing_chain_and_the_root(platform: Platform, est: EstClient) -> None:
    served = certificates_of(est.get(f"{EST}/cacerts"))
    authority = platform.authorities.issuing_authority()
    # a PKCS#7 SET OF certificates has no order (DER sorts it)
    assert set(served) == {*authority.chain, platform.authorities.root().certificate}


def test_csrattrs_is_base64_der(est: EstClient) -> None:
    response = est.get(f"{EST}/csrattrs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/csrattrs"
    assert base64.b64decode(response.content)[:1] == b"\x30"


@pytest.mark.parametrize(
    ("basic", "detail"),
    [
        (None, "needs HTTP Basic credentials"),
        ("est_000000000000:wrong", "unknown, revoked or wrong EST credentials"),
        ("nobody:wrong", "unknown, revoked or wrong EST credentials"),
    ],
)
def test_missing_or_unknown_credentials_get_401_and_nothing_is_recorded(
    platform: Platform, est: EstClient, basic: str | None, detail: str
) -> None:
    before = audit_actions(platform.database)
    response = est.post(f"{EST}/simpleenroll", csr_body(), basic=basic)
    refused(response, 401, detail)
    assert response.headers["www-authenticate"].startswith('Basic realm="certfleet EST"')
    nothing_recorded(platform)
    assert audit_actions(platform.database) == before
    assert enrolments(platform) == {"unauthenticated": 1.0}


def test_a_wrong_password_for_a_real_username_is_refused(platform: Platform, est: EstClient) -> None:
    username = credential(platform).split(":")[0]
    refused(est.post(f"{EST}/simpleenroll", csr_body(), basic=f"{username}:guess"), 401, "wrong EST")
    nothing_recorded(platform)


def test_a_revoked_credential_is_refused(platform: Platform, est: EstClient) -> None:
    basic = credential(platform)
    platform.est.revoke_credential(basic.split(":")[0], actor="test")
    refused(est.post(f"{EST}/simpleenroll", csr_body(), basic=basic), 401, "revoked")
    nothing_recorded(platform)


def test_a_credential_revoked_by_another_node_is_refused_by_the_next_request(
    platform: Platform, est: EstClient, data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    # Given a credential this server has just accepted (its request threads keep a SQLite
    # connection each for the credential read)
    basic = credential(platform)
    assert len(certificates_of(est.post(f"{EST}/simpleenroll", csr_body(), basic=basic))) == 1
    # When another worker or node on the same database revokes it
    other = make_platform(data_dir, db_url, clock)
    try:
        other.est.revoke_credential(basic.split(":")[0], actor="test")
    finally:
        other.close()
    # Then this server refuses the very next request with it, and issues nothing more
    refused(est.post(f"{EST}/simpleenroll", csr_body(), basic=basic), 401, "revoked")
    assert stored_rows(platform, "certificates") == 1


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"%%% not base64 %%%", 400, "not valid base64"),
        (base64.b64encode(b"garbage that is no CSR"), 400, "not a valid PKCS#10 CSR"),
        (b"", 400, "empty request body"),
    ],
)
def test_garbage_bodies_get_a_precise_400_and_nothing_is_recorded(
    platform: Platform, est: EstClient, body: bytes, status: int, detail: str
) -> None:
    basic = credential(platform)
    before = audit_actions(platform.database)
    refused(est.post(f"{EST}/simpleenroll", body, basic=basic), status, detail)
    nothing_recorded(platform)
    assert audit_actions(platform.database) == before
    assert enrolments(platform) == {"bad_request": 1.0}


def test_a_body_that_is_not_pkcs10_gets_415(platform: Platform, est: EstClient) -> None:
    response = est.post(
        f"{EST}/simpleenroll", csr_body(), basic=credential(platform), **{"Content-Type": "text/plain"}
    )
    refused(response, 415, "expected Content-Type application/pkcs10")
    nothing_recorded(platform)


def test_names_outside_the_credentials_patterns_are_refused(platform: Platform, est: EstClient) -> None:
    basic = credential(platform, names=["*.iot.example.test"])
    refused(
        est.post(f"{EST}/simpleenroll", csr_body(["cam.iot.example.test", "www.example.test"]), basic=basic),
        403,
        "this EST credential may not issue for 'www.example.test'",
    )
    nothing_recorded(platform)
    (issued,) = certificates_of(
        est.post(f"{EST}/simpleenroll", csr_body(["cam.iot.example.test"], None), basic=basic)
    )
    assert dns_names(issued) == ["cam.iot.example.test"]


POLICY = """\
rules:
  - name: iot-names
    team: iot
    allowed_names: ["*.iot.example.test"]
"""


def test_est_obeys_the_same_policy_rules_as_rest(platform: Platform, est: EstClient) -> None:
    platform.policy.apply(POLICY, source="p.yaml", actor="test")
    api = ApiClient(platform)
    try:
        token = api.token("iot", "issue", ["**.example.test"])
        rest = api.post(
            CERTS, token=token, json={"csr": make_csr(["www.example.test"]), "profile": "tls-server-client"}
        )
    finally:
        api.close()
    assert rest.status_code == 403
    response = est.post(
        f"{EST}/simpleenroll", csr_body(["www.example.test"]), basic=credential(platform, "iot")
    )
    refused(response, 403, "refused by policy rule 'iot-names'")
    assert rest.json()["detail"] == response.text.strip()
    nothing_recorded(platform)
    assert enrolments(platform) == {"refused": 1.0}
    (issued,) = certificates_of(
        est.post(f"{EST}/simpleenroll", csr_body(["cam.iot.example.test"]), basic=credential(platform, "iot"))
    )
    assert dns_names(issued) == ["cam.iot.example.test"]


# -- CA labels ----------------------------------------------------------------------------------


def test_a_ca_label_names_the_profile(platform: Platform, est: EstClient) -> None:
    (issued,) = certificates_of(
        est.post(f"{EST}/tls-client/simpleenroll", csr_body(), basic=credential(platform))
    )
    usages = issued.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert record_of(platform, issued).profile == "tls-client"


def test_an_unknown_label_is_404_and_a_bound_credential_keeps_its_profile(
    platform: Platform, est: EstClient
) -> None:
    refused(
        est.post(f"{EST}/no-such-ca/simpleenroll", csr_body(), basic=credential(platform)),
        404,
        "no EST CA label",
    )
    refused(est.get(f"{EST}/no-such-ca/cacerts"), 404, "no EST CA label")
    bound = credential(platform, profile="tls-server-client")
    refused(est.post(f"{EST}/tls-client/simpleenroll", csr_body(), basic=bound), 403, "only under profile")
    nothing_recorded(platform)


# -- simplereenroll -----------------------------------------------------------------------------


def enrol(
    platform: Platform, key: CertificateIssuerPrivateKeyTypes, names: Sequence[str] = ("dev.example.test",)
) -> x509.Certificate:
    client = EstClient(platform)
    try:
        (issued,) = certificates_of(
            client.post(f"{EST}/simpleenroll", csr_body(names, key=key), basic=credential(platform, "iot"))
        )
    finally:
        client.close()
    return issued


def test_simplereenroll_with_the_current_certificate_renews_it_for_the_same_team(platform: Platform) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    current = enrol(platform, key)
    client = EstClient(platform, certificate=current)
    try:
        new_key = ec.generate_private_key(ec.SECP256R1())
        (renewed,) = certificates_of(client.post(f"{EST}/simplereenroll", csr_body(key=new_key)))
    finally:
        client.close()
    assert renewed.subject == current.subject
    assert dns_names(renewed) == dns_names(current)
    assert renewed.public_key() == new_key.public_key()
    record = record_of(platform, renewed)
    assert record.team == "iot"
    assert record.source is Source.EST


@pytest.mark.parametrize(
    ("names", "common_name", "detail"),
    [
        (
            ["dev.example.test", "other.example.test"],
            "dev.example.test",
            "not in the certificate: other.example.test",
        ),
        (["other.example.test"], "dev.example.test", "missing from the CSR: dev.example.test"),
        (["dev.example.test"], "other.example.test", "must keep the Subject"),
    ],
)
def test_simplereenroll_for_other_names_is_refused_and_records_nothing(
    platform: Platform, names: list[str], common_name: str, detail: str
) -> None:
    current = enrol(platform, ec.generate_private_key(ec.SECP256R1()))
    certificates, audit = stored_rows(platform, "certificates"), audit_actions(platform.database)
    client = EstClient(platform, certificate=current)
    try:
        refused(client.post(f"{EST}/simplereenroll", csr_body(names, common_name)), 403, detail)
    finally:
        client.close()
    assert stored_rows(platform, "certificates") == certificates
    assert audit_actions(platform.database) == audit


def test_simplereenroll_keeps_the_profile_of_the_certificate_being_renewed(platform: Platform) -> None:
    client = EstClient(platform)
    try:
        (current,) = certificates_of(
            client.post(f"{EST}/tls-client/simpleenroll", csr_body(), basic=credential(platform))
        )
    finally:
        client.close()
    renewing = EstClient(platform, certificate=current)
    try:
        refused(
            renewing.post(f"{EST}/tls-server/simplereenroll", csr_body()),
            403,
            "only under profile 'tls-client'",
        )
        (renewed,) = certificates_of(renewing.post(f"{EST}/simplereenroll", csr_body()))
    finally:
        renewing.close()
    assert record_of(platform, renewed).profile == "tls-client"


def issued_elsewhere(platform: Platform, tags: tuple[str, ...]) -> x509.Certificate:
    """A certificate for dev.example.test issued outside EST (REST, CLI, agents use this)."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = IssuanceRequest(
        "tls-server-client", key.public_key(), ("dev.example.test",), "dev.example.test"
    )
    return platform.issuance.issue(request, actor="test", team="web", tags=tags).issued.certificate


def test_a_certificate_issued_over_rest_may_re_enrol_over_est(platform: Platform) -> None:
    client = EstClient(platform, certificate=issued_elsewhere(platform, ()))
    try:
        (renewed,) = certificates_of(client.post(f"{EST}/simplereenroll", csr_body()))
    finally:
        client.close()
    assert (record_of(platform, renewed).source, record_of(platform, renewed).team) == (Source.EST, "web")


def test_certfleets_own_certificates_cannot_re_enrol(platform: Platform) -> None:
    own = issued_elsewhere(platform, ("certfleet-agent-identity", "agent:host1"))
    certificates = stored_rows(platform, "certificates")
    client = EstClient(platform, certificate=own)
    try:
        refused(client.post(f"{EST}/simplereenroll", csr_body()), 403, "cannot re-enrol over EST")
    finally:
        client.close()
    assert stored_rows(platform, "certificates") == certificates


def test_simplereenroll_without_a_client_certificate_is_401(platform: Platform, est: EstClient) -> None:
    refused(
        est.post(f"{EST}/simplereenroll", csr_body(), basic=credential(platform)),
        401,
        "TLS client certificate",
    )
    nothing_recorded(platform)


def test_simplereenroll_with_a_revoked_certificate_is_refused(platform: Platform) -> None:
    current = enrol(platform, ec.generate_private_key(ec.SECP256R1()))
    platform.revocation.revoke(format(current.serial_number, "x"), "superseded", actor="test")
    client = EstClient(platform, certificate=current)
    try:
        refused(client.post(f"{EST}/simplereenroll", csr_body()), 403, "is revoked")
    finally:
        client.close()


# -- channel binding ----------------------------------------------------------------------------

UNIQUE = bytes(range(12))


def test_a_csr_bound_to_this_tls_1_2_connection_is_accepted_and_to_another_refused(
    platform: Platform,
) -> None:
    basic = credential(platform)
    client = EstClient(platform, tls_version=TLS_1_2, tls_unique=UNIQUE)
    try:
        certificates_of(
            client.post(f"{EST}/simpleenroll", csr_body(challenge=base64.b64encode(UNIQUE)), basic=basic)
        )
        other = base64.b64encode(b"y" * 12)
        refused(
            client.post(f"{EST}/simpleenroll", csr_body(challenge=other), basic=basic),
            400,
            "another connection",
        )
    finally:
        client.close()


def test_a_bound_csr_on_tls_1_3_is_refused(platform: Platform, est: EstClient) -> None:
    body = csr_body(challenge=base64.b64encode(UNIQUE))
    refused(est.post(f"{EST}/simpleenroll", body, basic=credential(platform)), 400, "TLS 1.3")
    nothing_recorded(platform)


# -- serverkeygen -------------------------------------------------------------------------------


def test_serverkeygen_returns_a_fresh_key_with_its_certificate(platform: Platform, est: EstClient) -> None:
    csr_key = ec.generate_private_key(ec.SECP256R1())
    response = est.post(f"{EST}/serverkeygen", csr_body(key=csr_key), basic=credential(platform, "iot"))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    message = email.message_from_bytes(
        f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode() + response.content,
        policy=email.policy.HTTP,
    )
    key_part, cert_part = message.iter_parts()  # type: ignore[attr-defined]
    key = serialization.load_der_private_key(base64.b64decode(key_part.get_payload()), None)
    (issued,) = pkcs7.load_der_pkcs7_certificates(base64.b64decode(cert_part.get_payload()))
    assert issued.public_key() == key.public_key()
    assert issued.public_key() != csr_key.public_key()  # generated, not the CSR's
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert record_of(platform, issued).team == "iot"
    # The key went to the requester only: no table holds it, in any encoding.
    key_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    scalar = key.private_numbers().private_value  # type: ignore[union-attr]
    secret = (key_der.hex(), base64.b64encode(key_der).decode()[:40], format(scalar, "x"), str(scalar))
    dump = everything_stored(platform)
    assert not [form for form in secret if form in dump]


def test_serverkeygen_encrypts_the_key_to_the_client_certificate_it_names(platform: Platform) -> None:
    # Given the listener's identity (it signs key packages) and a client with an RSA certificate
    server_identity(platform, ())
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_cert = enrol(platform, client_key, ("cam.iot.example.test",))
    identifier = client_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gen.iot.example.test")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("gen.iot.example.test")]), critical=False)
        .add_attribute(ASYMMETRIC_DECRYPT_KEY_ID, identifier, _tag=x509.name._ASN1Type.OctetString)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
    # When it asks for a server-generated key over its TLS connection
    client = EstClient(platform, certificate=client_cert)
    try:
        response = client.post(f"{EST}/serverkeygen", body, basic=credential(platform, "iot"))
    finally:
        client.close()
    # Then the key comes back enveloped to its certificate, signed by the listener
    assert response.status_code == 200, response.text
    message = email.message_from_bytes(
        f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode() + response.content,
        policy=email.policy.HTTP,
    )
    key_part, cert_part = message.iter_parts()  # type: ignore[attr-defined]
    assert key_part["Content-Type"].params["smime-type"] == "server-generated-key"
    key, signer = open_key_package(base64.b64decode(key_part.get_payload()), client_key)
    (issued,) = pkcs7.load_der_pkcs7_certificates(base64.b64decode(cert_part.get_payload()))
    assert issued.public_key() == key.public_key()
    listener = x509.load_pem_x509_certificates((platform.settings.data_dir.tls / "server.crt").read_bytes())
    assert signer == listener[0]


def test_serverkeygen_refuses_a_symmetric_key_request_and_records_nothing(platform: Platform) -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev.example.test")]))
        .add_attribute(DECRYPT_KEY_ID, b"kek-1", _tag=x509.name._ASN1Type.OctetString)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    client = EstClient(platform)
    try:
        body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
        response = client.post(f"{EST}/serverkeygen", body, basic=credential(platform))
    finally:
        client.close()
    refused(response, 400, "symmetric DecryptKeyIdentifier")
    nothing_recorded(platform)


# -- the HTTP edge ------------------------------------------------------------------------


def test_unknown_operations_and_wrong_methods_are_plain_404_and_405(
    platform: Platform, est: EstClient
) -> None:
    body = csr_body()
    refused(est.get(f"{EST}/nosuchop"), 404, "no EST operation 'nosuchop'")
    refused(est.get(f"{EST}/a/b/cacerts"), 404, "no EST operation at")
    refused(est.get(f"{EST}//cacerts"), 404, "no EST operation at")
    refused(est.get(f"{EST}/"), 404, "no EST operation at")
    wrong = est.get(f"{EST}/simpleenroll")
    refused(wrong, 405, "use POST")
    assert wrong.headers["allow"] == "POST"
    posted = est.post(f"{EST}/cacerts", body, basic=credential(platform))
    refused(posted, 405, "use GET")
    assert posted.headers["allow"] == "GET"
    nothing_recorded(platform)


def test_a_body_over_the_limit_is_refused_before_it_is_read(platform: Platform, est: EstClient) -> None:
    limit = platform.settings.server.max_body_bytes
    response = est.post(f"{EST}/simpleenroll", b"A" * (limit + 1), basic=credential(platform))
    assert response.status_code == 413, response.text
    nothing_recorded(platform)


def test_a_write_waiting_out_another_writers_lock_is_503_with_retry_after(
    tmp_path: Path, clock: FakeClock
) -> None:
    data = tmp_path / "locked"
    data.mkdir(mode=0o700)
    (data / "config.toml").write_text("[server]\nsqlite_lock_wait_seconds = 0.3\n")
    platform = make_platform(data, f"sqlite:///{data / 'certfleet.db'}", clock)
    platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
    client = EstClient(platform)
    try:
        basic = credential(platform)
        # Given another process's writer holding the database's write lock
        holder = sqlite3.connect(data / "certfleet.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            # When an enrolment waits for it longer than the bounded wait
            response = client.post(f"{EST}/simpleenroll", csr_body(), basic=basic)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # Then it is told to come back later, in one line, and nothing was recorded
        refused(response, 503, "database is unavailable")
        assert response.headers["retry-after"]
        nothing_recorded(platform)
        # and, the lock gone, the same enrolment succeeds
        assert len(certificates_of(client.post(f"{EST}/simpleenroll", csr_body(), basic=basic))) == 1
    finally:
        client.close()
        platform.close()

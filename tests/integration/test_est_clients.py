"""EST end to end against a real ``certfleet serve``, driven by curl and openssl as RFC 7030
describes the exchange: an ``openssl req`` CSR in base64 PKCS#10, PKCS#7 back, read with
``openssl pkcs7 -print_certs``; enrolment with Basic credentials, re-enrolment with the issued
certificate as the TLS client certificate, refusals for a wrong certificate and wrong
credentials, the policy engine as on REST, and the inventory's record of it all. The
tls-unique channel binding is checked over a real TLS 1.2 connection."""

from __future__ import annotations

import base64
import email
import email.policy
import http.client
import json
import re
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AttributeOID, NameOID, ObjectIdentifier

from tests.integration.test_serve import CERTFLEET, Server, certfleet

pytestmark = pytest.mark.integration

POLICY = """\
rules:
  - name: iot-names
    team: iot
    allowed_names: ["*.iot.example.test"]
"""


@dataclass
class Est:
    base: Path
    data_dir: Path
    server: Server
    root: Path
    basic: str  # username:password of a credential of team "iot"

    def url(self, operation: str) -> str:
        return f"https://localhost:{self.server.https_port}/.well-known/est/{operation}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CERTFLEET, *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def curl(self, operation: str, body: Path | None, *args: str) -> tuple[int, bytes]:
        """curl's exit status is returned through the HTTP code 0 when no response came."""
        out = self.base / "response"
        out.unlink(missing_ok=True)
        data = ["-H", "Content-Type: application/pkcs10", "--data-binary", f"@{body}"] if body else []
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "--cacert",
                str(self.root),
                "-o",
                str(out),
                "-w",
                "%{http_code}",
                *data,
                *args,
                self.url(operation),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            return 0, result.stderr.encode()
        return int(result.stdout), out.read_bytes()

    def inventory(self) -> list[dict[str, object]]:
        result = self.cli("inventory", "list", "--format", "json")
        assert result.returncode == 0, result.stderr
        rows: list[dict[str, object]] = json.loads(result.stdout)
        return rows


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    result = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def make_csr(directory: Path, name: str, *, san: str | None = None, key: Path | None = None) -> Path:
    """``openssl req`` for CN=name and DNS:name (or ``san``), base64 DER as EST wants it;
    the key is ``directory/key.pem`` unless an existing one is given."""
    directory.mkdir(parents=True, exist_ok=True)
    der = directory / "csr.der"
    key_args = (
        ["-key", str(key)] if key else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    )
    openssl(
        "req",
        "-new",
        *key_args,
        "-keyout" if not key else "-noenc",
        *([str(directory / "key.pem")] if not key else []),
        "-subj",
        f"/CN={name}",
        "-addext",
        f"subjectAltName={san or f'DNS:{name}'}",
        "-outform",
        "DER",
        "-out",
        str(der),
    )
    body = directory / "csr.b64"
    openssl("base64", "-in", str(der), "-out", str(body))
    return body


def print_certs(directory: Path, pkcs7_base64: bytes) -> Path:
    """The PKCS#7 answer through ``openssl base64 -d`` and ``openssl pkcs7 -print_certs``."""
    der = openssl("base64", "-d", stdin=pkcs7_base64)
    pem = directory / "cert.pem"
    pem.write_bytes(openssl("pkcs7", "-inform", "DER", "-print_certs", stdin=der))
    return pem


def serial_of(pem: Path) -> str:
    return format(x509.load_pem_x509_certificate(pem.read_bytes()).serial_number, "x")


@pytest.fixture(scope="module")
def est(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Est]:
    base = tmp_path_factory.mktemp("est")
    data_dir = base / "data"
    certfleet("init", "--data-dir", str(data_dir))
    (base / "policy.yaml").write_text(POLICY)
    certfleet("policy", "apply", str(base / "policy.yaml"), "--data-dir", str(data_dir))
    basic = certfleet("est", "credential", "create", "--team", "iot", "--data-dir", str(data_dir))
    server = Server(data_dir)  # the default workers: counters are summed across processes
    server.start()
    try:
        yield Est(base, data_dir, server, server.root_pem(base / "root.pem"), basic.stdout.strip())
    finally:
        server.stop()


def enrol(est: Est, name: str) -> Path:
    directory = est.base / name
    status, body = est.curl("simpleenroll", make_csr(directory, name), "--user", est.basic)
    assert status == 200, body
    return print_certs(directory, body)


def test_enrol_then_reenrol_with_the_issued_certificate(est: Est) -> None:
    # Given a CA bundle from /cacerts and a certificate enrolled with Basic credentials
    status, cacerts = est.curl("cacerts", None)
    assert status == 200
    chain = print_certs(est.base, cacerts).rename(est.base / "cacerts.pem")
    cert = enrol(est, "cam1.iot.example.test")
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(est.root), "-untrusted", str(chain), str(cert)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # When it re-enrols with that certificate and its key as the TLS client certificate
    again = est.base / "cam1-again"
    body = make_csr(again, "cam1.iot.example.test")
    key = est.base / "cam1.iot.example.test" / "key.pem"
    status, answer = est.curl("simplereenroll", body, "--cert", str(cert), "--key", str(key))
    # Then a new certificate comes back for the same names and the new key
    assert status == 200, answer
    renewed = x509.load_pem_x509_certificate(print_certs(again, answer).read_bytes())
    assert renewed.subject.rfc4514_string() == "CN=cam1.iot.example.test"
    new_key = serialization.load_pem_private_key((again / "key.pem").read_bytes(), None)
    assert renewed.public_key() == new_key.public_key()
    # And the inventory has both, source EST, for the credential's team
    rows = {row["serial"]: row for row in est.inventory()}
    for serial in (serial_of(cert), format(renewed.serial_number, "x")):
        assert rows[serial]["team"] == "iot"
        assert rows[serial]["source"] == "est"


def test_reenrol_with_a_certificate_for_other_names_is_refused(est: Est) -> None:
    other = enrol(est, "cam2.iot.example.test")
    key = est.base / "cam2.iot.example.test" / "key.pem"
    before = len(est.inventory())
    body = make_csr(est.base / "steal", "cam3.iot.example.test")
    status, answer = est.curl("simplereenroll", body, "--cert", str(other), "--key", str(key))
    assert status == 403
    assert b"must keep the Subject" in answer
    assert len(est.inventory()) == before


def test_reenrol_with_a_certificate_from_another_ca_fails_the_handshake(est: Est, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cam1.iot.example.test")])
    now = x509.load_pem_x509_certificate(est.root.read_bytes()).not_valid_before_utc
    forged = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now.replace(year=now.year + 1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("cam1.iot.example.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "forged.pem").write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "forged.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    before = len(est.inventory())
    body = make_csr(tmp_path / "csr", "cam1.iot.example.test")
    args = ("--cert", str(tmp_path / "forged.pem"), "--key", str(tmp_path / "forged.key"))
    status, error = est.curl("simplereenroll", body, *args)
    # No HTTP answer at all: the TLS layer refused the certificate (under TLS 1.3 curl sees
    # the connection closed after its handshake, "Empty reply from server").
    assert status == 0, error
    assert error.startswith(b"curl: ("), error
    assert len(est.inventory()) == before


def test_wrong_credentials_are_refused(est: Est) -> None:
    username = est.basic.split(":")[0]
    body = make_csr(est.base / "wrong", "cam4.iot.example.test")
    for user in (f"{username}:not-the-password", "est_ffffffffffff:x"):
        status, answer = est.curl("simpleenroll", body, "--user", user)
        assert status == 401, answer
        assert b"unknown, revoked or wrong EST credentials" in answer
    status, answer = est.curl("simpleenroll", body)
    assert status == 401


def test_est_and_rest_are_refused_by_the_same_policy_rule(est: Est) -> None:
    directory = est.base / "outside"
    status, answer = est.curl("simpleenroll", make_csr(directory, "www.example.test"), "--user", est.basic)
    assert status == 403
    assert b"refused by policy rule 'iot-names'" in answer
    token = certfleet(
        "token",
        "create",
        "--team",
        "iot",
        "--scope",
        "issue",
        "--allow-names",
        "**.example.test",
        "--data-dir",
        str(est.data_dir),
    ).stdout.strip()
    pem = openssl("req", "-in", str(directory / "csr.der"), "-inform", "DER").decode()
    (directory / "body.json").write_text(json.dumps({"csr": pem, "profile": "tls-server-client"}))
    rest = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(est.root),
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            "Content-Type: application/json",
            "--data",
            f"@{directory / 'body.json'}",
            f"https://localhost:{est.server.https_port}/api/v1/certificates",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    problem = json.loads(rest.stdout)
    assert problem["status"] == 403
    assert problem["detail"] == answer.decode().strip()


def test_a_csr_bound_to_its_tls_1_2_connection(est: Est) -> None:
    """RFC 7030 section 3.5 over a real connection: the client reads tls-unique from its own
    TLS 1.2 session and puts it in the CSR; the same CSR on another connection is refused."""
    context = ssl.create_default_context(cafile=str(est.root))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    key = ec.generate_private_key(ec.SECP256R1())
    headers = {
        "Content-Type": "application/pkcs10",
        "Authorization": "Basic " + base64.b64encode(est.basic.encode()).decode(),
    }

    def bound_csr(unique: bytes) -> bytes:
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cam5.iot.example.test")]))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName("cam5.iot.example.test")]), critical=False
            )
            .add_attribute(AttributeOID.CHALLENGE_PASSWORD, base64.b64encode(unique))
            .sign(key, hashes.SHA256())
        )
        return base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))

    def post(body: bytes | None) -> tuple[int, bytes, bytes]:
        connection = http.client.HTTPSConnection("localhost", est.server.https_port, context=context)
        try:
            connection.connect()
            assert isinstance(connection.sock, ssl.SSLSocket)
            assert connection.sock.version() == "TLSv1.2"
            unique = connection.sock.get_channel_binding("tls-unique")
            assert unique is not None
            connection.request("POST", "/.well-known/est/simpleenroll", body or bound_csr(unique), headers)
            response = connection.getresponse()
            return response.status, response.read(), bound_csr(unique)
        finally:
            connection.close()

    status, answer, first_csr = post(None)
    assert status == 200, answer
    status, answer, _ = post(first_csr)  # the first connection's binding, on a second connection
    assert status == 400
    assert b"made for another connection" in answer


def test_prometheus_counts_est_requests_by_outcome(est: Est) -> None:
    # Given one more enrolment and one more wrong password, whichever worker takes them
    enrol(est, "cam6.iot.example.test")
    body = make_csr(est.base / "cam7", "cam7.iot.example.test")
    assert est.curl("simpleenroll", body, "--user", "est_ffffffffffff:x")[0] == 401
    # When /metrics is scraped
    token = certfleet(
        "token", "create", "--team", "ops", "--scope", "admin", "--data-dir", str(est.data_dir)
    ).stdout.strip()
    metrics = f"https://localhost:{est.server.https_port}/metrics"
    scraped = subprocess.run(
        ["curl", "-sS", "--cacert", str(est.root), "-H", f"Authorization: Bearer {token}", metrics],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Then EST's counter has both outcomes, summed over the serve workers
    counts = {
        outcome: float(value)
        for outcome, value in re.findall(
            r'^certfleet_enrolments_total\{outcome="(\w+)",protocol="est"\} (\S+)$', scraped, re.MULTILINE
        )
    }
    assert counts["issued"] >= 1
    assert counts["unauthenticated"] >= 1


def test_serverkeygen_key_encrypted_to_the_client_opens_with_openssl_cms(est: Est) -> None:
    # Given a client with an RSA certificate enrolled over EST
    directory = est.base / "rsa-client"
    directory.mkdir()
    openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(directory / "key.pem"),
        "-subj", "/CN=gw.iot.example.test", "-addext", "subjectAltName=DNS:gw.iot.example.test",
        "-outform", "DER", "-out", str(directory / "csr.der"),
    )  # fmt: skip
    openssl("base64", "-in", str(directory / "csr.der"), "-out", str(directory / "csr.b64"))
    status, answer = est.curl("simpleenroll", directory / "csr.b64", "--user", est.basic)
    assert status == 200, answer
    client_cert = print_certs(directory, answer)
    identifier = (
        x509.load_pem_x509_certificate(client_cert.read_bytes())
        .extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        .value.digest
    )
    # When it asks for a server-generated key encrypted to that certificate's key
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gen.iot.example.test")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("gen.iot.example.test")]), critical=False)
        .add_attribute(
            ObjectIdentifier("1.2.840.113549.1.9.16.2.54"), identifier, _tag=x509.name._ASN1Type.OctetString
        )
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    (directory / "keygen.b64").write_bytes(base64.encodebytes(csr.public_bytes(serialization.Encoding.DER)))
    status, answer = est.curl(
        "serverkeygen",
        directory / "keygen.b64",
        "--user",
        est.basic,
        "--cert",
        str(client_cert),
        "--key",
        str(directory / "key.pem"),
        "-D",
        str(directory / "headers"),
    )
    assert status == 200, answer
    content_type = next(
        line.split(":", 1)[1].strip()
        for line in (directory / "headers").read_text().splitlines()
        if line.lower().startswith("content-type:")
    )
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + answer, policy=email.policy.HTTP
    )
    key_part, cert_part = message.iter_parts()  # type: ignore[attr-defined]
    assert key_part.get_content_type() == "application/pkcs7-mime"
    assert key_part["Content-Type"].params["smime-type"] == "server-generated-key"
    (directory / "key.p7").write_bytes(base64.b64decode(key_part.get_payload()))
    # Then openssl decrypts it with the client's key, verifies the server's signature up to
    # the root, and the key inside belongs to the issued certificate
    openssl(
        "cms", "-decrypt", "-inform", "DER", "-in", str(directory / "key.p7"),
        "-inkey", str(directory / "key.pem"), "-binary", "-out", str(directory / "signed.der"),
    )  # fmt: skip
    signed = cms.SignedData.load((directory / "signed.der").read_bytes())
    wrapped = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    (directory / "signed-ci.der").write_bytes(wrapped)
    openssl(
        "cms", "-verify", "-inform", "DER", "-in", str(directory / "signed-ci.der"),
        "-CAfile", str(est.root), "-purpose", "any", "-binary", "-out", str(directory / "package.der"),
    )  # fmt: skip
    package = core.Sequence.load((directory / "package.der").read_bytes())
    key = serialization.load_der_private_key(package[0].dump(), None)
    issued = x509.load_pem_x509_certificate(
        print_certs(directory, cert_part.get_payload().encode()).read_bytes()
    )
    assert issued.public_key() == key.public_key()
    assert dns_names_of(issued) == ["gen.iot.example.test"]


def dns_names_of(certificate: x509.Certificate) -> list[str]:
    return certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)

"""A post-quantum hierarchy beside the classic one on a real ``certfleet serve`` (issue 17).

``certfleet ca create`` (remote mode, POST /api/v1/cas) makes the ML-DSA-65 root and issuing
CA; an ML-DSA-65 leaf is issued over REST from a CSR and another through ACME with certbot's
``acme`` client (http-01 answered by a real responder); one is revoked; the CRL and an OCSP
answer from the plain-HTTP listener are verified with ``cryptography``; a second ACME order for
the same name renews with a new ML-DSA key. Every chain is verified by ``cryptography``'s
RFC 5280 verifier over the PQ root alone (Debian 12's OpenSSL 3.0 cannot read ML-DSA keys);
pkilint's structure checks run on the certificates, the CRL and the OCSP response.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from acme import challenges, client, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa
from cryptography.x509 import ocsp, verification
from cryptography.x509.oid import SignatureAlgorithmOID
from josepy import jwa, jwk

from certfleet.x509 import KeyType, describe_public_key, generate_private_key, signature_hash_for
from tests.ca.conftest import blocking, pkilint
from tests.ports import free_port
from tests.protocols.acme.peers import CertfleetServe, ChallTestSrv, Http01Responder, _bin

pytestmark = pytest.mark.integration

ML_DSA_65 = SignatureAlgorithmOID.ML_DSA_65
TIMEOUT_SECONDS = 30


class Pq:
    def __init__(
        self,
        serve: CertfleetServe,
        token: str,
        root: x509.Certificate,
        issuing: x509.Certificate,
        env: dict[str, str],
    ):
        self.serve = serve
        self.env = env  # remote-mode CLI environment
        self.token = token
        self.root = root
        self.issuing = issuing
        self.api = httpx.Client(
            base_url=f"https://127.0.0.1:{serve.https_port}",
            verify=ssl.create_default_context(cafile=str(serve.root_pem)),
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
            timeout=TIMEOUT_SECONDS,
        )
        self.http = f"http://127.0.0.1:{serve.http_port}"


@pytest.fixture(scope="module")
def dns() -> Iterator[ChallTestSrv]:
    server = ChallTestSrv()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def responder() -> Iterator[Http01Responder]:
    answering = Http01Responder()
    yield answering
    answering.stop()


@pytest.fixture(scope="module")
def pq(
    tmp_path_factory: pytest.TempPathFactory, dns: ChallTestSrv, responder: Http01Responder
) -> Iterator[Pq]:
    serve = CertfleetServe(
        tmp_path_factory.mktemp("pq"),
        dns,
        http01_port=responder.port,
        tlsalpn01_port=free_port(),
        acme_config="[server]\nworkers = 1\n",  # one serving process: no worker is under test
    )
    try:
        made = serve.cli("token", "create", "--team", "ops", "--scope", "admin")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        # Remote mode: the CLI talks to the server (POST /api/v1/cas), not the data directory.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}
        env |= {
            "CERTFLEET_SERVER": f"https://127.0.0.1:{serve.https_port}",
            "CERTFLEET_TOKEN": token,
            "CERTFLEET_CA_FILE": str(serve.root_pem),
            "CERTFLEET_HOME": str(serve.data_dir.parent / "client"),
        }
        created = subprocess.run(
            [
                _bin("certfleet"),
                "ca",
                "create",
                "--key-type",
                "ml-dsa-65",
                "--name",
                "PQ Root",
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr
        root_row, issuing_row = json.loads(created.stdout)
        pems = {}
        with httpx.Client(
            verify=ssl.create_default_context(cafile=str(serve.root_pem)), trust_env=False
        ) as api:
            for row in (root_row, issuing_row):
                shown = api.get(
                    f"https://127.0.0.1:{serve.https_port}/api/v1/cas/{row['id']}",
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert shown.status_code == 200, shown.text
                pems[row["role"]] = x509.load_pem_x509_certificate(shown.json()["certificate_pem"].encode())
        state = Pq(serve, token, pems["root"], pems["intermediate"], env)
        yield state
        state.api.close()
    finally:
        serve.stop()


def _verify(pq: Pq, leaf: x509.Certificate, chain: list[x509.Certificate], name: x509.GeneralName) -> None:
    """RFC 5280 path validation by cryptography over the PQ root alone."""
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([pq.root]))
        .time(leaf.not_valid_before_utc + dt.timedelta(minutes=5))
        .build_server_verifier(name)  # type: ignore[arg-type]
    )
    path = verifier.verify(leaf, chain)
    assert path[-1] == pq.root
    assert all(c.signature_algorithm_oid == ML_DSA_65 for c in path)


def _csr(key: Any, *, dns: str | None = None, ip: str | None = None) -> bytes:
    names: list[x509.GeneralName] = []
    if dns:
        names.append(x509.DNSName(dns))
    if ip:
        names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, signature_hash_for(key)).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


def _issue_rest(pq: Pq, name: str) -> dict[str, Any]:
    key = generate_private_key(KeyType.ML_DSA_65)
    body = {"profile": "internal-mtls-pq", "csr": _csr(key, dns=name).decode(), "team": "ops"}
    response = pq.api.post("/api/v1/certificates", json=body)
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def _acme_order(pq: Pq, responder: Http01Responder) -> tuple[x509.Certificate, list[x509.Certificate]]:
    account_key = jwk.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(
        account_key,
        alg=jwa.ES256,
        verify_ssl=str(pq.serve.root_pem),  # type: ignore[arg-type]  # requests takes a CA path
        user_agent="pq-test",
    )
    acme = client.ClientV2(client.ClientV2.get_directory(pq.serve.directory_url, net), net)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    leaf_key = generate_private_key(KeyType.ML_DSA_65)
    order = acme.new_order(_csr(leaf_key, ip="127.0.0.1"), profile="internal-mtls-pq")
    for authz in order.authorizations:
        challenge = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = challenge.response_and_validation(acme.net.key)
        responder.tokens[challenge.chall.encode("token")] = validation
        acme.answer_challenge(challenge, response)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while authz.body.status == messages.STATUS_PENDING:  # the validation's own progress
            assert time.monotonic() < deadline, "authorization still pending"
            time.sleep(0.05)
            authz, _ = acme.poll(authz)
        assert authz.body.status == messages.STATUS_VALID, authz.body
    done = acme.poll_and_finalize(order, dt.datetime.now() + dt.timedelta(seconds=TIMEOUT_SECONDS))
    assert done.fullchain_pem is not None
    leaf, *chain = x509.load_pem_x509_certificates(done.fullchain_pem.encode())
    return leaf, chain


def test_a_rest_leaf_chains_to_the_pq_root_and_is_shown_honestly(pq: Pq) -> None:
    pq.root.verify_directly_issued_by(pq.root)
    pq.issuing.verify_directly_issued_by(pq.root)

    issued = _issue_rest(pq, "svc.pq.example.test")

    leaf = x509.load_pem_x509_certificate(issued["certificate_pem"].encode())
    chain = x509.load_pem_x509_certificates(issued["chain_pem"].encode())
    _verify(pq, leaf, chain, x509.DNSName("svc.pq.example.test"))
    record = issued["certificate"]
    assert (record["key_algorithm"], record["key_size"], record["signature_algorithm"]) == (
        "ml-dsa-65",
        1952 * 8,
        "ML-DSA-65",
    )
    assert 5_300 < len(leaf.public_bytes(serialization.Encoding.DER)) < 6_000
    # The default hierarchy still issues tls-server, with ECDSA.
    classic = pq.api.post(
        "/api/v1/certificates",
        json={"profile": "tls-server", "key_type": "ec-p256", "sans": ["w.pq.example.test"]},
    )
    assert classic.status_code == 201, classic.text
    assert classic.json()["certificate"]["signature_algorithm"] == "ecdsa-with-SHA256"


def test_the_pq_profile_refuses_a_classic_csr_with_a_problem(pq: Pq) -> None:
    key = generate_private_key(KeyType.EC_P256)
    body = {"profile": "internal-mtls-pq", "csr": _csr(key, dns="x.pq.example.test").decode()}
    response = pq.api.post("/api/v1/certificates", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "profile internal-mtls-pq certifies ml-dsa-65" in response.json()["detail"]


def test_acme_finalizes_an_ml_dsa_csr_and_renews_with_a_new_key(pq: Pq, responder: Http01Responder) -> None:
    first, chain = _acme_order(pq, responder)
    _verify(pq, first, chain, x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    assert describe_public_key(first.public_key()).label == "ml-dsa-65"

    renewed, chain = _acme_order(pq, responder)

    _verify(pq, renewed, chain, x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    assert renewed.serial_number != first.serial_number
    assert renewed.public_key() != first.public_key()


def test_revocation_is_published_signed_with_ml_dsa(pq: Pq, tmp_path: Path) -> None:
    issued = _issue_rest(pq, "gone.pq.example.test")
    leaf = x509.load_pem_x509_certificate(issued["certificate_pem"].encode())
    serial = issued["certificate"]["serial"]

    revoked = pq.api.post(f"/api/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"})

    assert revoked.status_code == 200, revoked.text
    # The leaf names its own (PQ) CA's CRL; fetched from this server's plain-HTTP listener.
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    crl_path = f"/crl/{issued['certificate']['issuer_ca_id']}.crl"
    assert points[0].full_name is not None and points[0].full_name[0].value.endswith(crl_path)
    crl_der = httpx.get(f"{pq.http}{crl_path}", trust_env=False).content
    crl = x509.load_der_x509_crl(crl_der)
    assert crl.signature_algorithm_oid == ML_DSA_65
    assert crl.is_signature_valid(pq.issuing.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert entry is not None
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, pq.issuing, hashes.SHA1()).build()
    answer_der = httpx.post(
        f"{pq.http}/ocsp",
        content=request.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
        trust_env=False,
    ).content
    answer = ocsp.load_der_ocsp_response(answer_der)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.signature_algorithm_oid == ML_DSA_65
    signer = answer.certificates[0] if answer.certificates else pq.issuing
    if answer.certificates:
        signer.verify_directly_issued_by(pq.issuing)
    signer_key = signer.public_key()
    assert isinstance(signer_key, mldsa.MLDSA65PublicKey)
    signer_key.verify(answer.signature, answer.tbs_response_bytes)

    # pkilint: structure checks pass; it reports the ML-DSA key algorithm as unsupported
    # (NOTICE), so it cannot check key-dependent rules (AKI of a self-issued root, key usage
    # by algorithm) for ML-DSA.
    files = {
        "root.pem": pq.root.public_bytes(serialization.Encoding.PEM),
        "issuing.pem": pq.issuing.public_bytes(serialization.Encoding.PEM),
        "leaf.pem": leaf.public_bytes(serialization.Encoding.PEM),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        assert blocking(pkilint("lint_pkix_cert", tmp_path / name)) == [], name
    (tmp_path / "crl.der").write_bytes(crl_der)
    assert blocking(pkilint("lint_crl", tmp_path / "crl.der", "-t", "CRL", "-p", "PKIX")) == []
    (tmp_path / "ocsp.der").write_bytes(answer_der)
    assert blocking(pkilint("lint_ocsp_response", tmp_path / "ocsp.der")) == []


def test_the_cli_issues_an_ml_dsa_leaf_remotely(pq: Pq, tmp_path: Path) -> None:
    """``certfleet issue`` against the server makes the key locally and proves it with an
    ML-DSA CSR (no hash: pure ML-DSA), so the private key never leaves the client."""
    out = tmp_path / "out"
    argv = [_bin("certfleet"), "issue", "--profile", "internal-mtls-pq", "--key-type", "ml-dsa-65"]
    argv += ["--san", "cli.pq.example.test", "--out", str(out)]
    issued = subprocess.run(argv, capture_output=True, text=True, env=pq.env, check=False, timeout=120)
    assert issued.returncode == 0, issued.stderr
    leaf = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    chain = x509.load_pem_x509_certificates((out / "chain.pem").read_bytes())
    _verify(pq, leaf, chain, x509.DNSName("cli.pq.example.test"))
    assert (out / "key.pem").stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), None)
    assert key.public_key() == leaf.public_key()

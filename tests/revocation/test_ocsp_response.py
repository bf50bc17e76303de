"""Building signed OCSP responses: one or several answers, nonce echo, delegated or CA
signer; checked with cryptography, openssl and pkilint."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp

from certfleet.revocation import (
    CertStatus,
    IssuerIndex,
    ResponseSigner,
    RevocationReason,
    SingleAnswer,
    build_responder_certificate,
    build_response,
    error_response,
)
from tests.revocation.conftest import Pki, pkilint_errors

VALIDITY = dt.timedelta(days=4)


def _delegate(
    pki: Pki, now: dt.datetime, key: CertificateIssuerPrivateKeyTypes | None = None
) -> ResponseSigner:
    key = key or ec.generate_private_key(ec.SECP256R1())
    cert = build_responder_certificate(
        ca=pki.issuing,
        ca_key=pki.issuing_key,
        public_key=key.public_key(),
        serial_number=77,
        now=now,
        lifetime=dt.timedelta(days=14),
    )
    return ResponseSigner(pki.issuing.id, cert, key, delegated=True)


def _verify(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> None:
    public = certificate.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(
            response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm)
        )  # type: ignore[arg-type]
    elif isinstance(public, rsa.RSAPublicKey):
        public.verify(
            response.signature, response.tbs_response_bytes, PKCS1v15(), response.signature_hash_algorithm
        )  # type: ignore[arg-type]
    else:
        public.verify(response.signature, response.tbs_response_bytes)  # type: ignore[union-attr,call-arg]


def test_a_good_answer_signed_by_a_delegated_responder(pki: Pki, now: dt.datetime) -> None:
    signer = _delegate(pki, now)
    cert_id = IssuerIndex([pki.issuing]).cert_id(pki.issuing, 0x42)
    der = build_response(
        [SingleAnswer(cert_id, CertStatus.GOOD)], signer, this_update=now, next_update=now + VALIDITY
    )
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == 0x42
    assert (response.issuer_name_hash, response.issuer_key_hash) == (
        cert_id.issuer_name_hash,
        cert_id.issuer_key_hash,
    )
    assert response.this_update_utc == now and response.next_update_utc == now + VALIDITY
    assert response.certificates == [signer.certificate]
    assert response.responder_key_hash is not None  # RFC 5019 2.2.3: by key
    _verify(response, signer.certificate)
    assert len(response.extensions) == 0


def test_a_revoked_answer_carries_time_and_reason_and_echoes_the_nonce(pki: Pki, now: dt.datetime) -> None:
    signer = _delegate(pki, now)
    cert_id = IssuerIndex([pki.issuing]).cert_id(pki.issuing, 7, "sha256")
    revoked_at = now - dt.timedelta(hours=3)
    answer = SingleAnswer(cert_id, CertStatus.REVOKED, revoked_at, RevocationReason.KEY_COMPROMISE)
    der = build_response([answer], signer, this_update=now, next_update=now + VALIDITY, nonce=b"\x01" * 32)
    response = ocsp.load_der_ocsp_response(der)
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == revoked_at
    assert response.revocation_reason is x509.ReasonFlags.key_compromise
    assert isinstance(response.hash_algorithm, hashes.SHA256)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"\x01" * 32


def test_an_unspecified_revocation_has_no_reason(pki: Pki, now: dt.datetime) -> None:
    cert_id = IssuerIndex([pki.issuing]).cert_id(pki.issuing, 7)
    answer = SingleAnswer(cert_id, CertStatus.REVOKED, now, RevocationReason.UNSPECIFIED)
    response = ocsp.load_der_ocsp_response(
        build_response([answer], _delegate(pki, now), this_update=now, next_update=now + VALIDITY)
    )
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is None


@pytest.mark.parametrize("kind", ["ec", "rsa", "ed25519"])
def test_several_answers_in_one_response_each_signer_key_type(pki: Pki, now: dt.datetime, kind: str) -> None:
    key = {
        "ec": lambda: ec.generate_private_key(ec.SECP384R1()),
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
    }[kind]()
    signer = _delegate(pki, now, key)
    cert = signer.certificate
    index = IssuerIndex([pki.issuing])
    answers = [
        SingleAnswer(index.cert_id(pki.issuing, 1), CertStatus.GOOD),
        SingleAnswer(index.cert_id(pki.issuing, 2), CertStatus.REVOKED, now, RevocationReason.SUPERSEDED),
        SingleAnswer(index.cert_id(pki.issuing, 3, "sha256"), CertStatus.UNKNOWN),
    ]
    der = build_response(answers, signer, this_update=now, next_update=now + VALIDITY, nonce=b"abc")
    response = ocsp.load_der_ocsp_response(der)
    singles = list(response.responses)
    assert [s.serial_number for s in singles] == [1, 2, 3]
    assert [s.certificate_status for s in singles] == [
        ocsp.OCSPCertStatus.GOOD,
        ocsp.OCSPCertStatus.REVOKED,
        ocsp.OCSPCertStatus.UNKNOWN,
    ]
    assert singles[1].revocation_reason is x509.ReasonFlags.superseded
    assert isinstance(singles[2].hash_algorithm, hashes.SHA256)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"abc"
    assert response.certificates == [cert]
    _verify(response, cert)  # the merged ResponseData was signed again


def test_openssl_verifies_a_multi_answer_response_against_the_root(
    pki: Pki, now: dt.datetime, tmp_path: Path
) -> None:
    signer = _delegate(pki, now)
    index = IssuerIndex([pki.issuing])
    leaves = [pki.leaf(now), pki.leaf(now)]
    answers = [
        SingleAnswer(index.cert_id(pki.issuing, leaves[0].serial_number), CertStatus.GOOD),
        SingleAnswer(
            index.cert_id(pki.issuing, leaves[1].serial_number),
            CertStatus.REVOKED,
            now,
            RevocationReason.KEY_COMPROMISE,
        ),
    ]
    (tmp_path / "resp.der").write_bytes(
        build_response(answers, signer, this_update=now, next_update=now + VALIDITY)
    )
    for name, cert in {"root": pki.root.certificate, "issuer": pki.issuing.certificate}.items():
        (tmp_path / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    argv = ["openssl", "ocsp", "-respin", str(tmp_path / "resp.der"), "-CAfile", str(tmp_path / "root.pem")]
    argv += ["-issuer", str(tmp_path / "issuer.pem")]
    for index_, leaf in enumerate(leaves):
        path = tmp_path / f"leaf{index_}.pem"
        path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        argv += ["-cert", str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert "Response verify OK" in result.stderr + result.stdout
    assert f"{tmp_path / 'leaf0.pem'}: good" in result.stdout
    assert f"{tmp_path / 'leaf1.pem'}: revoked" in result.stdout
    assert "Reason: keyCompromise" in result.stdout


def test_a_ca_signed_response_names_the_ca_and_carries_no_certificates(pki: Pki, now: dt.datetime) -> None:
    signer = ResponseSigner(pki.issuing.id, pki.issuing.certificate, pki.issuing_key, delegated=False)
    cert_id = IssuerIndex([pki.issuing]).cert_id(pki.issuing, 5)
    der = build_response(
        [SingleAnswer(cert_id, CertStatus.GOOD)], signer, this_update=now, next_update=now + VALIDITY
    )
    response = ocsp.load_der_ocsp_response(der)
    assert response.certificates == []
    assert response.responder_key_hash == cert_id.issuer_key_hash  # SHA-1 of the CA key
    _verify(response, pki.issuing.certificate)


@pytest.mark.parametrize(
    "status",
    [
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        ocsp.OCSPResponseStatus.UNAUTHORIZED,
        ocsp.OCSPResponseStatus.INTERNAL_ERROR,
    ],
)
def test_error_responses_carry_only_their_status(status: ocsp.OCSPResponseStatus) -> None:
    response = ocsp.load_der_ocsp_response(error_response(status))
    assert response.response_status is status


def test_pkilint_finds_no_error_in_responses(pki: Pki, now: dt.datetime, tmp_path: Path) -> None:
    signer = _delegate(pki, now)
    index = IssuerIndex([pki.issuing])
    documents = {
        "good": build_response(
            [SingleAnswer(index.cert_id(pki.issuing, 1), CertStatus.GOOD)],
            signer,
            this_update=now,
            next_update=now + VALIDITY,
        ),
        "multi": build_response(
            [
                SingleAnswer(index.cert_id(pki.issuing, 1), CertStatus.GOOD),
                SingleAnswer(
                    index.cert_id(pki.issuing, 2), CertStatus.REVOKED, now, RevocationReason.KEY_COMPROMISE
                ),
            ],
            signer,
            this_update=now,
            next_update=now + VALIDITY,
            nonce=b"n" * 16,
        ),
        "malformed": error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
    }
    for name, der in documents.items():
        path = tmp_path / f"{name}.der"
        path.write_bytes(der)
        assert pkilint_errors("lint_ocsp_response", path) == [], name


def test_nothing_to_answer_is_refused(pki: Pki, now: dt.datetime) -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_response([], _delegate(pki, now), this_update=now, next_update=now + VALIDITY)

"""CSR parsing: the self-signature must verify, the key must be one certfleet accepts."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from certfleet.x509 import BadKey, MalformedInput, csr_public_key, load_csr, names_from_csr
from certfleet.x509.csr import ec_parameters_tag, spki_of_request_info
from tests.x509.factories import (
    OVERSIZED_RSA_BITS,
    build_csr,
    der,
    dsa_csr,
    explicit_ec_csr,
    oversized_rsa_csr,
    pem,
    rsa_key,
    secp256k1_csr,
    with_flipped_signature,
)


@pytest.mark.parametrize("encode", [pem, der], ids=["pem", "der"])
def test_good_csr_loads_in_pem_and_der(encode: object) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = build_csr(key, ("www.example.com", "192.0.2.7"), cn="www.example.com")
    loaded = load_csr(encode(csr))  # type: ignore[operator]
    assert loaded.public_key() == key.public_key()
    assert names_from_csr(loaded) == ("www.example.com", ["www.example.com", "192.0.2.7"])


def test_csr_without_names() -> None:
    loaded = load_csr(pem(build_csr(ed25519.Ed25519PrivateKey.generate())))
    assert names_from_csr(loaded) == (None, [])


@pytest.mark.parametrize("key_name", ["ec", "rsa"])
def test_flipped_signature_does_not_verify(key_name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1()) if key_name == "ec" else rsa_key(2048)
    tampered = with_flipped_signature(build_csr(key, ("www.example.com",)))
    # Still well-formed: only the signature check can catch it.
    x509.load_der_x509_csr(tampered)
    with pytest.raises(MalformedInput, match="CSR signature does not verify"):
        load_csr(tampered)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a csr at all",
        b"-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
        b"\x30\x82\x01\x00\x02\x01\x00",  # DER header promising more than there is
        b"\x30\x03\x02\x01\x00",  # well-formed DER, not a CertificationRequest
    ],
    ids=["empty", "text", "pem-garbage", "pem-bad-base64", "der-truncated", "der-wrong-structure"],
)
def test_malformed_csr(data: bytes) -> None:
    with pytest.raises(MalformedInput, match="malformed CSR"):
        load_csr(data)


def test_truncated_der_of_a_real_csr() -> None:
    data = der(build_csr(ec.generate_private_key(ec.SECP256R1()), ("www.example.com",)))
    with pytest.raises(MalformedInput, match="malformed CSR"):
        load_csr(data[:-10])


def test_explicit_ec_parameters_are_refused() -> None:
    data = explicit_ec_csr()
    # cryptography maps the explicit P-256 parameters back to the named curve, which is why
    # the raw SubjectPublicKeyInfo has to be read.
    assert isinstance(x509.load_pem_x509_csr(data).public_key(), ec.EllipticCurvePublicKey)
    with pytest.raises(BadKey, match="explicit"):
        load_csr(data)


def test_named_curve_parameters_tag() -> None:
    csr = build_csr(ec.generate_private_key(ec.SECP384R1()), ("a.example.com",))
    assert ec_parameters_tag(spki_of_request_info(csr.tbs_certrequest_bytes)) == 0x06
    explicit = x509.load_pem_x509_csr(explicit_ec_csr())
    assert ec_parameters_tag(spki_of_request_info(explicit.tbs_certrequest_bytes)) == 0x30
    rsa_csr = build_csr(rsa_key(2048), ("a.example.com",))
    assert ec_parameters_tag(spki_of_request_info(rsa_csr.tbs_certrequest_bytes)) is None


def test_parsing_leaves_key_policy_to_check_public_key() -> None:
    # load_csr checks structure and signature; key policy is check_public_key's job, so the
    # refusal names the key rather than the CSR.
    assert load_csr(dsa_csr()).public_key().key_size == 2048  # type: ignore[union-attr]
    assert load_csr(secp256k1_csr()).public_key().curve.name == "secp256k1"  # type: ignore[union-attr]
    assert csr_public_key(load_csr(oversized_rsa_csr())).key_size == OVERSIZED_RSA_BITS  # type: ignore[union-attr]

"""ML-DSA (FIPS 204) key types: generation, honest sizes, CSR signatures and the pure-ML-DSA
signature (no pre-hash) every X.509 structure uses."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from certfleet.x509 import (
    KeyType,
    check_public_key,
    csr_public_key,
    describe_public_key,
    generate_private_key,
    load_csr,
    signature_hash_for,
)
from certfleet.x509.errors import BadKey

# FIPS 204 table 2: (public key bytes, signature bytes, signature OID).
SIZES = {
    KeyType.ML_DSA_44: (1312, 2420, SignatureAlgorithmOID.ML_DSA_44),
    KeyType.ML_DSA_65: (1952, 3309, SignatureAlgorithmOID.ML_DSA_65),
    KeyType.ML_DSA_87: (2592, 4627, SignatureAlgorithmOID.ML_DSA_87),
}


@pytest.mark.parametrize("key_type", list(SIZES), ids=str)
def test_each_parameter_set_generates_and_describes_itself_honestly(key_type: KeyType) -> None:
    public_bytes, signature_bytes, _ = SIZES[key_type]
    key = generate_private_key(key_type)

    described = describe_public_key(key.public_key())

    assert described.label == key_type.value
    assert described.public_key_bytes == public_bytes == len(key.public_key().public_bytes_raw())  # type: ignore[union-attr]
    assert described.signature_bytes == signature_bytes == len(key.sign(b"tbs"))  # type: ignore[call-arg]
    assert described.size == public_bytes * 8
    assert described.post_quantum and key_type.post_quantum
    assert check_public_key(key.public_key()) == described
    # Pure ML-DSA: no pre-hash, as for EdDSA (the builders take None).
    assert signature_hash_for(key) is None


def test_parse_accepts_the_names_any_case_and_lists_them_when_wrong() -> None:
    assert KeyType.parse("ML-DSA-65") is KeyType.ML_DSA_65
    with pytest.raises(BadKey, match=r"expected one of .*ml-dsa-44, ml-dsa-65, ml-dsa-87"):
        KeyType.parse("ml-dsa-128")


def test_classic_keys_are_not_post_quantum() -> None:
    described = describe_public_key(generate_private_key(KeyType.EC_P256).public_key())
    assert not described.post_quantum
    assert (described.public_key_bytes, described.signature_bytes) == (65, 73)
    assert not KeyType.RSA_3072.post_quantum


@pytest.mark.parametrize("key_type", list(SIZES), ids=str)
def test_an_ml_dsa_csr_is_read_and_its_signature_checked(key_type: KeyType) -> None:
    key = generate_private_key(key_type)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc.example.test")]))
        .sign(key, None)
    )
    loaded = load_csr(csr.public_bytes(Encoding.PEM))

    assert loaded.signature_algorithm_oid == SIZES[key_type][2]
    assert describe_public_key(csr_public_key(loaded)).label == key_type.value


def test_raw_library_keys_are_recognised_whoever_made_them() -> None:
    key = mldsa.MLDSA87PrivateKey.generate()
    assert describe_public_key(key.public_key()).label == "ml-dsa-87"

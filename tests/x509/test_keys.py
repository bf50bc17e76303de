"""Key types certfleet makes and accepts, and the ones it refuses."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from certfleet.x509 import BadKey, KeyType, check_public_key, describe_public_key, signature_hash_for
from certfleet.x509.keys import MAX_RSA_BITS, MIN_RSA_BITS, generate_private_key
from tests.x509.factories import OVERSIZED_RSA_BITS, rsa_key


def _rsa_public_key_of(bits: int) -> rsa.RSAPublicKey:
    """A public key of exactly ``bits`` bits without generating primes: the checks look only
    at the modulus size, and a public key needs no private half."""
    modulus = (1 << (bits - 1)) | 1  # top bit set (exact size), odd
    return rsa.RSAPublicNumbers(65537, modulus).public_key()


@pytest.mark.parametrize(
    ("key_type", "algorithm", "size"),
    [
        (KeyType.EC_P256, "ec", 256),
        (KeyType.EC_P384, "ec", 384),
        (KeyType.RSA_2048, "rsa", 2048),
        (KeyType.RSA_3072, "rsa", 3072),
        (KeyType.ED25519, "ed25519", 256),
    ],
)
def test_generated_keys_match_their_type(key_type: KeyType, algorithm: str, size: int) -> None:
    key = generate_private_key(key_type)
    described = check_public_key(key.public_key())
    assert (described.algorithm, described.size) == (algorithm, size)
    assert described.label == key_type.value


@pytest.mark.parametrize("text", ["ec-p256", "EC-P384", "rsa-4096", "ed25519"])
def test_key_type_parse(text: str) -> None:
    assert KeyType.parse(text).value == text.lower()


@pytest.mark.parametrize("text", ["", "rsa-1024", "ec-p521", "dsa", "ed448", "rsa"])
def test_unknown_key_type_names_the_choices(text: str) -> None:
    with pytest.raises(BadKey, match=r"unknown key type.*expected one of ec-p256"):
        KeyType.parse(text)


def test_rsa_size_limits() -> None:
    assert (MIN_RSA_BITS, MAX_RSA_BITS) == (2048, 8192)
    assert check_public_key(_rsa_public_key_of(2048)).size == 2048
    assert check_public_key(_rsa_public_key_of(8192)).size == 8192
    with pytest.raises(BadKey, match="2047 bits is too small"):
        check_public_key(_rsa_public_key_of(2047))
    with pytest.raises(BadKey, match=f"{OVERSIZED_RSA_BITS} bits is too large"):
        check_public_key(_rsa_public_key_of(OVERSIZED_RSA_BITS))


def test_real_rsa_1024_key_is_refused() -> None:
    with pytest.raises(BadKey, match="1024 bits is too small"):
        check_public_key(rsa_key(1024).public_key())


@pytest.mark.parametrize(
    ("curve", "size"), [(ec.SECP256R1(), 256), (ec.SECP384R1(), 384), (ec.SECP521R1(), 521)]
)
def test_nist_curves_are_accepted(curve: ec.EllipticCurve, size: int) -> None:
    described = check_public_key(ec.generate_private_key(curve).public_key())
    assert (described.algorithm, described.size, described.curve) == ("ec", size, curve.name)


@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.BrainpoolP256R1(), ec.SECP224R1()])
def test_other_curves_are_refused(curve: ec.EllipticCurve) -> None:
    with pytest.raises(BadKey, match=f"EC curve {curve.name} is not allowed"):
        check_public_key(ec.generate_private_key(curve).public_key())


def test_dsa_is_refused() -> None:
    with pytest.raises(BadKey, match="DSA keys are not supported"):
        check_public_key(dsa.generate_private_key(2048).public_key())


def test_ed448_is_refused() -> None:
    with pytest.raises(BadKey, match="unsupported public key type"):
        check_public_key(ed448.Ed448PrivateKey.generate().public_key())


def test_ed25519_only_where_the_profile_allows_it() -> None:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    assert check_public_key(public).algorithm == "ed25519"
    with pytest.raises(BadKey, match="Ed25519 keys are not allowed"):
        check_public_key(public, allow_ed25519=False)


def test_describe_keeps_weak_keys_for_the_inventory() -> None:
    # Discovery records what it finds, so description never refuses.
    assert describe_public_key(rsa_key(1024).public_key()).label == "rsa-1024"
    assert describe_public_key(dsa.generate_private_key(1024).public_key()).algorithm == "dsa"
    assert describe_public_key(ed448.Ed448PrivateKey.generate().public_key()).algorithm == "ed448"


@pytest.mark.parametrize(
    ("key", "hash_name"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "sha256"),
        (ec.generate_private_key(ec.SECP384R1()), "sha384"),
        (ec.generate_private_key(ec.SECP521R1()), "sha512"),
        (rsa_key(2048), "sha256"),
        (ed25519.Ed25519PrivateKey.generate(), None),
    ],
    ids=["p256", "p384", "p521", "rsa", "ed25519"],
)
def test_signature_hash_matches_key_strength(key: object, hash_name: str | None) -> None:
    chosen = signature_hash_for(key)  # type: ignore[arg-type]
    assert (chosen.name if isinstance(chosen, hashes.HashAlgorithm) else None) == hash_name

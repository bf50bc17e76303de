"""Key types certfleet generates and accepts, and the checks applied to public keys."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)

from certfleet.x509.errors import BadKey

__all__ = [
    "KeyDescription",
    "KeyType",
    "check_public_key",
    "describe_public_key",
    "generate_private_key",
    "signature_hash_for",
    "spki_der",
    "spki_sha256",
]

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
_ALLOWED_CURVES = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}


def spki_der(public_key: PublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo (RFC 5280 section 4.1.2.7): a key's identity whatever
    certificate, CSR or key file carries it."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_sha256(public_key: PublicKeyTypes) -> str:
    """Lowercase hex SHA-256 of :func:`spki_der`: how a blocked key is recognised and how
    keys found on disk are paired with certificates."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


class KeyType(enum.StrEnum):
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"

    @classmethod
    def parse(cls, value: str) -> KeyType:
        try:
            return cls(value.lower())
        except ValueError:
            allowed = ", ".join(k.value for k in cls)
            raise BadKey(f"unknown key type {value!r}: expected one of {allowed}") from None


def generate_private_key(key_type: KeyType) -> CertificateIssuerPrivateKeyTypes:
    match key_type:
        case KeyType.EC_P256:
            return ec.generate_private_key(ec.SECP256R1())
        case KeyType.EC_P384:
            return ec.generate_private_key(ec.SECP384R1())
        case KeyType.RSA_2048 | KeyType.RSA_3072 | KeyType.RSA_4096:
            bits = int(key_type.value.split("-")[1])
            return rsa.generate_private_key(public_exponent=65537, key_size=bits)
        case KeyType.ED25519:
            return ed25519.Ed25519PrivateKey.generate()
    raise BadKey(f"unsupported key type {key_type}")  # pragma: no cover - enum is exhaustive


@dataclass(frozen=True)
class KeyDescription:
    """``algorithm`` is ``rsa``, ``ec`` or ``ed25519``; ``size`` is bits (curve size for EC)."""

    algorithm: str
    size: int
    curve: str | None = None

    @property
    def label(self) -> str:
        if self.algorithm == "rsa":
            return f"rsa-{self.size}"
        if self.algorithm == "ec":
            return f"ec-p{self.size}"
        return self.algorithm


def describe_public_key(key: CertificatePublicKeyTypes | object) -> KeyDescription:
    """Describe any public key found in a certificate (weak ones included: discovery needs them)."""
    if isinstance(key, rsa.RSAPublicKey):
        return KeyDescription("rsa", key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyDescription("ec", key.curve.key_size, key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyDescription("ed25519", 256)
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyDescription("ed448", 456)
    if isinstance(key, dsa.DSAPublicKey):
        return KeyDescription("dsa", key.key_size)
    return KeyDescription(type(key).__name__.lower(), 0)


def check_public_key(key: object, *, allow_ed25519: bool = True) -> KeyDescription:
    """Refuse keys certfleet will not certify: RSA outside 2048..8192 bits, DSA, EC curves other
    than P-256/P-384/P-521, and anything else unknown."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise BadKey(f"RSA key of {key.key_size} bits is too small (minimum {MIN_RSA_BITS})")
        if key.key_size > MAX_RSA_BITS:
            raise BadKey(f"RSA key of {key.key_size} bits is too large (maximum {MAX_RSA_BITS})")
        return KeyDescription("rsa", key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _ALLOWED_CURVES:
            raise BadKey(f"EC curve {key.curve.name} is not allowed (P-256, P-384 or P-521 only)")
        return KeyDescription("ec", _ALLOWED_CURVES[key.curve.name], key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        if not allow_ed25519:
            raise BadKey("Ed25519 keys are not allowed for this profile")
        return KeyDescription("ed25519", 256)
    if isinstance(key, dsa.DSAPublicKey):
        raise BadKey("DSA keys are not supported")
    raise BadKey(f"unsupported public key type {type(key).__name__}")


def signature_hash_for(key: PrivateKeyTypes) -> hashes.HashAlgorithm | None:
    """The hash a CA key signs with: SHA-384 for P-384, SHA-512 for P-521, none for EdDSA,
    SHA-256 otherwise (RFC 5480 section 4 pairs hash strength with curve size)."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size >= 521:
            return hashes.SHA512()
        if key.curve.key_size >= 384:
            return hashes.SHA384()
    return hashes.SHA256()

"""Key types certfleet generates and accepts, and the checks applied to public keys."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, mldsa, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)

from certfleet.x509.errors import BadKey

__all__ = [
    "ML_DSA_SIZES",
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


@dataclass(frozen=True)
class _MlDsaSize:
    """Byte sizes of an ML-DSA parameter set (FIPS 204 table 2), and its NIST category."""

    public_key_bytes: int
    signature_bytes: int
    nist_category: int


# FIPS 204 section 4, table 2: public key and signature sizes in bytes. A certificate carries
# one of each (the subject's key, the issuer's signature): an ML-DSA-65 leaf under an
# ML-DSA-65 CA is about 5.8 KB of DER with its extensions, against under 1 KB for ECDSA P-256.
ML_DSA_SIZES: dict[str, _MlDsaSize] = {
    "ml-dsa-44": _MlDsaSize(1312, 2420, 2),
    "ml-dsa-65": _MlDsaSize(1952, 3309, 3),
    "ml-dsa-87": _MlDsaSize(2592, 4627, 5),
}
_ML_DSA_PUBLIC = (
    (mldsa.MLDSA44PublicKey, "ml-dsa-44"),
    (mldsa.MLDSA65PublicKey, "ml-dsa-65"),
    (mldsa.MLDSA87PublicKey, "ml-dsa-87"),
)
_ML_DSA_PRIVATE = (mldsa.MLDSA44PrivateKey, mldsa.MLDSA65PrivateKey, mldsa.MLDSA87PrivateKey)


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
    ML_DSA_44 = "ml-dsa-44"
    ML_DSA_65 = "ml-dsa-65"
    ML_DSA_87 = "ml-dsa-87"

    @property
    def post_quantum(self) -> bool:
        return self.value in ML_DSA_SIZES

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
        case KeyType.ML_DSA_44:
            return mldsa.MLDSA44PrivateKey.generate()
        case KeyType.ML_DSA_65:
            return mldsa.MLDSA65PrivateKey.generate()
        case KeyType.ML_DSA_87:
            return mldsa.MLDSA87PrivateKey.generate()
    raise BadKey(f"unsupported key type {key_type}")  # pragma: no cover - enum is exhaustive


@dataclass(frozen=True)
class KeyDescription:
    """``algorithm`` is ``rsa``, ``ec``, ``ed25519`` or an ML-DSA parameter set
    (``ml-dsa-65``); ``size`` is bits (curve size for EC, the encoded public key for ML-DSA,
    whose strength is its parameter set, not a bit length)."""

    algorithm: str
    size: int
    curve: str | None = None

    @property
    def public_key_bytes(self) -> int:
        """The public key as a certificate carries it (without the SPKI wrapping)."""
        pq = ML_DSA_SIZES.get(self.algorithm)
        if pq is not None:
            return pq.public_key_bytes
        if self.algorithm == "ec":
            return 1 + 2 * ((self.size + 7) // 8)  # uncompressed point (SEC 1 2.3.3)
        if self.algorithm == "ed25519":
            return 32
        return (self.size + 7) // 8  # RSA: the modulus (the exponent is a few bytes more)

    @property
    def signature_bytes(self) -> int:
        """The size of a signature this key makes (ECDSA: its DER upper bound)."""
        pq = ML_DSA_SIZES.get(self.algorithm)
        if pq is not None:
            return pq.signature_bytes
        if self.algorithm == "ec":
            return 2 * ((self.size + 7) // 8) + 9  # DER SEQUENCE of two INTEGERs, at most
        if self.algorithm == "ed25519":
            return 64
        return (self.size + 7) // 8

    @property
    def post_quantum(self) -> bool:
        return self.algorithm in ML_DSA_SIZES

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
    ml_dsa = _ml_dsa(key)
    if ml_dsa is not None:
        return ml_dsa
    return KeyDescription(type(key).__name__.lower(), 0)


def _ml_dsa(key: object) -> KeyDescription | None:
    for kind, name in _ML_DSA_PUBLIC:
        if isinstance(key, kind):
            return KeyDescription(name, ML_DSA_SIZES[name].public_key_bytes * 8)
    return None


def check_public_key(key: object, *, allow_ed25519: bool = True) -> KeyDescription:
    """Refuse keys certfleet will not certify: RSA outside 2048..8192 bits, DSA, EC curves other
    than P-256/P-384/P-521, and anything else unknown. ML-DSA (all three sets) is accepted."""
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
    ml_dsa = _ml_dsa(key)
    if ml_dsa is not None:  # FIPS 204; every parameter set is at least NIST category 2
        return ml_dsa
    raise BadKey(f"unsupported public key type {type(key).__name__}")


def signature_hash_for(key: PrivateKeyTypes) -> hashes.HashAlgorithm | None:
    """The hash a CA key signs with: SHA-384 for P-384, SHA-512 for P-521, none for EdDSA,
    SHA-256 otherwise (RFC 5480 section 4 pairs hash strength with curve size). ML-DSA signs
    the message itself, as EdDSA does (RFC 9881 uses pure ML-DSA in X.509): none."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey, *_ML_DSA_PRIVATE)):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size >= 521:
            return hashes.SHA512()
        if key.curve.key_size >= 384:
            return hashes.SHA384()
    return hashes.SHA256()

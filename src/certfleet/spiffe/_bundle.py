"""The SPIFFE trust bundle (SPIFFE Trust Domain and Bundle spec, section 4): a JWK Set whose
keys are the X.509 authorities (``use: x509-svid``, one certificate in ``x5c``) and the JWT
signing keys (``use: jwt-svid``, with ``kid``), plus ``spiffe_sequence`` and
``spiffe_refresh_hint``. Also the agent-facing and OIDC shapes of the same material."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certfleet.spiffe._jwt import b64url, ec_public_jwk

__all__ = ["JWT_SVID_USE", "X509_SVID_USE", "jwt_jwks", "spiffe_bundle", "x509_authority_jwk"]

X509_SVID_USE = "x509-svid"
JWT_SVID_USE = "jwt-svid"
_CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}


def x509_authority_jwk(certificate: x509.Certificate) -> dict[str, Any]:
    key = certificate.public_key()
    jwk: dict[str, Any]
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv, size = _CURVES[key.curve.name]
        numbers = key.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": crv,
            "x": b64url(numbers.x.to_bytes(size, "big")),
            "y": b64url(numbers.y.to_bytes(size, "big")),
        }
    elif isinstance(key, rsa.RSAPublicKey):
        rsa_numbers = key.public_numbers()
        jwk = {
            "kty": "RSA",
            "n": b64url(rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big")),
        }
    else:  # Ed25519 roots: OKP (RFC 8037)
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    der = certificate.public_bytes(serialization.Encoding.DER)
    # x5c is standard base64, not base64url (RFC 7517 section 4.7).
    return {**jwk, "use": X509_SVID_USE, "x5c": [base64.b64encode(der).decode("ascii")]}


def jwt_jwks(keys: Mapping[str, ec.EllipticCurvePublicKey]) -> dict[str, Any]:
    return {"keys": [ec_public_jwk(key, use=JWT_SVID_USE, kid=kid) for kid, key in sorted(keys.items())]}


def spiffe_bundle(
    authorities: Sequence[x509.Certificate],
    jwt_keys: Mapping[str, ec.EllipticCurvePublicKey],
    *,
    sequence: int,
    refresh_hint_seconds: int,
) -> dict[str, Any]:
    return {
        "keys": [x509_authority_jwk(c) for c in authorities] + jwt_jwks(jwt_keys)["keys"],
        "spiffe_sequence": sequence,
        "spiffe_refresh_hint": refresh_hint_seconds,
    }

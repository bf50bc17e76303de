"""JWT-SVID validation (the SPIFFE JWT-SVID spec, section 4) for ValidateJWTSVID.

The token is a compact JWS whose ``kid`` names a key of the trust domain's JWT bundle; the
signature must verify (ES256 or ES384, the algorithms certfleet's keys use), ``exp`` must be
in the future, ``aud`` must hold the audience asked about, and ``sub`` must be a SPIFFE ID
of the trust domain.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from certfleet.agent.workload.errors import WorkloadError
from certfleet.spiffe import InvalidSpiffeId, SpiffeId

__all__ = ["JwtInvalid", "validate_jwt_svid"]

_ALGORITHMS: dict[str, tuple[ec.EllipticCurve, hashes.HashAlgorithm, int]] = {
    "ES256": (ec.SECP256R1(), hashes.SHA256(), 32),
    "ES384": (ec.SECP384R1(), hashes.SHA384(), 48),
}
_CURVES = {"P-256": "ES256", "P-384": "ES384"}


class JwtInvalid(WorkloadError):
    pass


def _b64(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JwtInvalid("token is not valid base64url") from exc


def _json(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64(part))
    except ValueError as exc:
        raise JwtInvalid(f"the token's {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise JwtInvalid(f"the token's {what} is not a JSON object")
    return value


def _public_key(jwk: Mapping[str, Any], alg: str) -> ec.EllipticCurvePublicKey:
    curve, _, size = _ALGORITHMS[alg]
    if jwk.get("kty") != "EC" or _CURVES.get(str(jwk.get("crv"))) != alg:
        raise JwtInvalid(f"key {jwk.get('kid')!r} is not an {alg} key")
    x, y = _b64(str(jwk.get("x", ""))), _b64(str(jwk.get("y", "")))
    if len(x) != size or len(y) != size:
        raise JwtInvalid(f"key {jwk.get('kid')!r} has malformed coordinates")
    try:
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
        ).public_key()
    except ValueError as exc:
        raise JwtInvalid(f"key {jwk.get('kid')!r} is not a point on its curve") from exc


def validate_jwt_svid(
    token: str, audience: str, trust_domain: str, jwks: Mapping[str, Any], now: dt.datetime
) -> tuple[str, dict[str, Any]]:
    """The token's SPIFFE ID and claims, or :class:`JwtInvalid` saying what is wrong."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtInvalid("token is not a compact JWS (three dot-separated parts)")
    header, claims = _json(parts[0], "header"), _json(parts[1], "claims")
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in _ALGORITHMS:
        raise JwtInvalid(f"unsupported token signature algorithm {alg!r}")
    key = next((k for k in jwks.get("keys", ()) if isinstance(k, dict) and k.get("kid") == kid), None)
    if key is None:
        raise JwtInvalid(f"no key {kid!r} in the JWT bundle of {trust_domain}")
    _, digest, size = _ALGORITHMS[str(alg)]
    raw = _b64(parts[2])
    if len(raw) != 2 * size:
        raise JwtInvalid("token signature has the wrong length")
    signature = encode_dss_signature(int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big"))
    try:
        _public_key(key, str(alg)).verify(signature, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(digest))
    except InvalidSignature as exc:
        raise JwtInvalid("token signature does not verify") from exc
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise JwtInvalid("token has no expiry (exp)")
    if dt.datetime.fromtimestamp(exp, dt.UTC) <= now:
        raise JwtInvalid("token has expired")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if audience not in audiences:
        raise JwtInvalid(f"expected audience {audience!r}, the token is for {audiences!r}")
    try:
        subject = SpiffeId.parse(str(claims.get("sub", "")))
    except InvalidSpiffeId as exc:
        raise JwtInvalid(f"token subject is not a SPIFFE ID: {exc.detail}") from exc
    if subject.trust_domain.name != trust_domain:
        raise JwtInvalid(f"token subject {subject} is not in the trust domain {trust_domain}")
    return str(subject), claims

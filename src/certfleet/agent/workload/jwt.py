"""ValidateJWTSVID on the agent: the token checked against the trust domain's JWT bundle as
the agent last fetched it, with the domain's validator (certfleet.spiffe: ES256, ``kid`` in
the bundle, signature, ``exp``, ``aud``, ``sub`` a SPIFFE ID), plus the SPIFFE JWT-SVID
spec's last rule: the subject must belong to this trust domain.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from certfleet.agent.workload.errors import WorkloadError
from certfleet.spiffe import InvalidJwtSvid
from certfleet.spiffe import validate_jwt_svid as validate_with_keys

__all__ = ["JwtInvalid", "jwt_keys", "validate_jwt_svid"]

_P256_BYTES = 32


class JwtInvalid(WorkloadError):
    pass


def _coordinate(text: object) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return int.from_bytes(raw, "big") if len(raw) == _P256_BYTES else None


def jwt_keys(jwks: Mapping[str, Any]) -> dict[str, ec.EllipticCurvePublicKey]:
    """The bundle's P-256 keys by ``kid``; a key that is malformed or of another kind is
    left out (a token naming it then fails as signed by an unknown key)."""
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for jwk in jwks.get("keys", ()):
        if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            continue
        kid, x, y = jwk.get("kid"), _coordinate(jwk.get("x")), _coordinate(jwk.get("y"))
        if not isinstance(kid, str) or x is None or y is None:
            continue
        try:
            keys[kid] = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except ValueError:
            continue  # not a point on the curve
    return keys


def validate_jwt_svid(
    token: str, audience: str, trust_domain: str, jwks: Mapping[str, Any], now: dt.datetime
) -> tuple[str, dict[str, Any]]:
    """The token's SPIFFE ID and claims, or :class:`JwtInvalid` saying what is wrong."""
    try:
        claims = validate_with_keys(token, jwt_keys(jwks), audience=audience, now=now)
    except InvalidJwtSvid as exc:
        raise JwtInvalid(exc.detail) from exc
    if claims.spiffe_id.trust_domain.name != trust_domain:
        raise JwtInvalid(f"token subject {claims.spiffe_id} is not in the trust domain {trust_domain}")
    return str(claims.spiffe_id), claims.to_dict()

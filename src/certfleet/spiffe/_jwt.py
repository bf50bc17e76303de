"""JWT-SVIDs (JWT-SVID spec): compact JWS signed with ES256, ``kid`` in the header, claims
``sub`` (the SPIFFE ID), ``aud``, ``exp`` and ``iat``; and JWKs for the keys that sign them.

Signing and validating are pure functions over ``cryptography`` keys: the server signs, the
agent's ValidateJWTSVID validates against the bundle it fetched, and neither needs a JOSE
library. Only ES256 is accepted when validating (JWT-SVID section 3 lists the allowed
algorithms; ``none`` and the HMAC family never are), so a token cannot pick its own check.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from certfleet.spiffe._ids import SpiffeId
from certfleet.spiffe.errors import InvalidJwtSvid, InvalidSpiffeId

__all__ = [
    "DEFAULT_JWT_TTL",
    "JwtSvidClaims",
    "b64url",
    "ec_public_jwk",
    "key_id",
    "sign_jwt_svid",
    "validate_jwt_svid",
]

# Five minutes, SPIRE's default JWT-SVID TTL: a bearer token should not outlive its request.
DEFAULT_JWT_TTL = dt.timedelta(minutes=5)
_P256_BYTES = 32


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise InvalidJwtSvid("token is not base64url") from exc


def _coordinates(key: ec.EllipticCurvePublicKey) -> tuple[str, str]:
    numbers = key.public_numbers()
    return b64url(numbers.x.to_bytes(_P256_BYTES, "big")), b64url(numbers.y.to_bytes(_P256_BYTES, "big"))


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    """The RFC 7638 JWK thumbprint of the key: stable, and derived from nothing secret."""
    x, y = _coordinates(key)
    canonical = json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y}, separators=(",", ":"))
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical.encode())
    return b64url(digest.finalize())


def ec_public_jwk(key: ec.EllipticCurvePublicKey, *, use: str, kid: str | None = None) -> dict[str, Any]:
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("JWT-SVID keys are P-256 (ES256)")
    x, y = _coordinates(key)
    jwk: dict[str, Any] = {"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": use}
    if kid is not None:
        jwk["kid"] = kid
    return jwk


@dataclass(frozen=True)
class JwtSvidClaims:
    spiffe_id: SpiffeId
    audience: tuple[str, ...]
    issued_at: dt.datetime
    expires_at: dt.datetime
    issuer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "sub": str(self.spiffe_id),
            "aud": list(self.audience),
            "iat": int(self.issued_at.timestamp()),
            "exp": int(self.expires_at.timestamp()),
        }
        if self.issuer:
            claims["iss"] = self.issuer
        return claims


def sign_jwt_svid(key: ec.EllipticCurvePrivateKey, kid: str, claims: JwtSvidClaims) -> str:
    if not claims.audience or any(not a for a in claims.audience):
        raise InvalidJwtSvid("a JWT-SVID needs at least one non-empty audience")
    header = {"alg": "ES256", "kid": kid, "typ": "JWT"}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims.to_dict(), separators=(",", ":")).encode())
    )
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    return signing_input + "." + b64url(signature)


def _json_part(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_unb64url(text))
    except ValueError as exc:
        raise InvalidJwtSvid(f"token {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidJwtSvid(f"token {what} is not a JSON object")
    return value


def validate_jwt_svid(
    token: str,
    keys: Mapping[str, ec.EllipticCurvePublicKey],
    *,
    audience: str,
    now: dt.datetime,
) -> JwtSvidClaims:
    """Check a JWT-SVID against the trust domain's JWT keys (by ``kid``) and return its claims.
    Raises :class:`InvalidJwtSvid` saying what failed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidJwtSvid("token is not a compact JWS (three dot-separated parts)")
    header = _json_part(parts[0], "header")
    if header.get("alg") != "ES256":
        raise InvalidJwtSvid(f"algorithm {header.get('alg')!r} is not accepted (ES256 only)")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise InvalidJwtSvid(f"key id {kid!r} is not in the trust bundle")
    signature = _unb64url(parts[2])
    if len(signature) != 2 * _P256_BYTES:
        raise InvalidJwtSvid("signature is not a 64-byte ES256 signature")
    der = encode_dss_signature(
        int.from_bytes(signature[:_P256_BYTES], "big"), int.from_bytes(signature[_P256_BYTES:], "big")
    )
    try:
        keys[kid].verify(der, f"{parts[0]}.{parts[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise InvalidJwtSvid("signature does not verify") from None
    claims = _json_part(parts[1], "claims")
    return _claims(claims, audience, now)


def _claims(claims: dict[str, Any], audience: str, now: dt.datetime) -> JwtSvidClaims:
    try:
        subject = SpiffeId.parse(str(claims.get("sub", "")))
    except InvalidSpiffeId as exc:
        raise InvalidJwtSvid(f"subject is not a SPIFFE ID: {exc.detail}") from exc
    aud = claims.get("aud")
    audiences: Sequence[Any] = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if audience not in audiences:
        raise InvalidJwtSvid(f"audience {audience!r} is not among the token's audiences")
    exp, iat = claims.get("exp"), claims.get("iat", claims.get("exp"))
    if not isinstance(exp, int) or isinstance(exp, bool) or not isinstance(iat, int):
        raise InvalidJwtSvid("token has no numeric exp claim")
    expires_at = dt.datetime.fromtimestamp(exp, dt.UTC)
    if expires_at <= now:
        raise InvalidJwtSvid("token has expired")
    issuer = claims.get("iss")
    return JwtSvidClaims(
        subject,
        tuple(str(a) for a in audiences),
        dt.datetime.fromtimestamp(iat, dt.UTC),
        expires_at,
        issuer if isinstance(issuer, str) else None,
    )

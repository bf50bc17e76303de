"""JWT-SVIDs: what we sign verifies with an independent JOSE implementation (PyJWT), and what
we validate is refused for each way a token can be wrong."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from certfleet.spiffe import (
    InvalidJwtSvid,
    JwtSvidClaims,
    SpiffeId,
    ec_public_jwk,
    key_id,
    sign_jwt_svid,
    validate_jwt_svid,
)
from certfleet.spiffe._jwt import b64url

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
APP = SpiffeId.parse("spiffe://example.org/ns/app")


def _claims(audience: tuple[str, ...] = ("payments",), minutes: int = 5) -> JwtSvidClaims:
    return JwtSvidClaims(APP, audience, NOW, NOW + dt.timedelta(minutes=minutes), "https://ca.example.org")


def test_signed_token_verifies_with_pyjwt_through_its_jwk() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    kid = key_id(key.public_key())
    token = sign_jwt_svid(key, kid, _claims(("payments", "audit")))
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": kid, "typ": "JWT"}
    # The relying party has only the published JWK, not our key object.
    jwk = ec_public_jwk(key.public_key(), use="jwt-svid", kid=kid)
    public = ECAlgorithm.from_jwk(json.dumps(jwk))
    claims = pyjwt.decode(
        token,
        public,  # type: ignore[arg-type]
        algorithms=["ES256"],
        audience="audit",
        options={"verify_exp": False, "verify_iat": False},  # NOW is a fixed instant
    )
    assert claims == {
        "sub": str(APP),
        "aud": ["payments", "audit"],
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + dt.timedelta(minutes=5)).timestamp()),
        "iss": "https://ca.example.org",
    }


def test_key_id_is_the_rfc7638_thumbprint() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = ec_public_jwk(key.public_key(), use="sig")
    # RFC 7638: SHA-256 of the required members, sorted, without whitespace.
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    assert key_id(key.public_key()) == b64url(hashlib.sha256(canonical.encode()).digest())


def test_validate_accepts_our_token_and_a_pyjwt_token() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    kid = key_id(key.public_key())
    keys = {kid: key.public_key()}
    ours = validate_jwt_svid(sign_jwt_svid(key, kid, _claims()), keys, audience="payments", now=NOW)
    assert (ours.spiffe_id, ours.audience) == (APP, ("payments",))
    theirs = pyjwt.encode(
        {"sub": str(APP), "aud": "payments", "exp": int(NOW.timestamp()) + 60},
        key,
        algorithm="ES256",
        headers={"kid": kid},
    )
    assert validate_jwt_svid(theirs, keys, audience="payments", now=NOW).spiffe_id == APP


def _forged(header: dict[str, object], claims: dict[str, object], key: ec.EllipticCurvePrivateKey) -> str:
    return pyjwt.encode(claims, key, algorithm="ES256", headers=header)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        ("wrong-audience", "audience 'payments' is not among"),
        ("expired", "expired"),
        ("unknown-kid", "not in the trust bundle"),
        ("other-key", "signature does not verify"),
        ("not-spiffe", "subject is not a SPIFFE ID"),
        ("hs256", "is not accepted (ES256 only)"),
        ("none", "is not accepted (ES256 only)"),
        ("garbage", "compact JWS"),
    ],
)
def test_validate_refuses(mutate: str, reason: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    kid = key_id(key.public_key())
    keys = {kid: key.public_key()}
    exp = int(NOW.timestamp()) + 60
    claims: dict[str, object] = {"sub": str(APP), "aud": ["payments"], "exp": exp, "iat": exp - 60}
    if mutate == "wrong-audience":
        token = sign_jwt_svid(key, kid, _claims(("billing",)))
    elif mutate == "expired":
        token = sign_jwt_svid(key, kid, _claims(minutes=-1))
    elif mutate == "unknown-kid":
        token = sign_jwt_svid(key, "nope", _claims())
    elif mutate == "other-key":
        token = _forged({"kid": kid}, claims, ec.generate_private_key(ec.SECP256R1()))
    elif mutate == "not-spiffe":
        token = _forged({"kid": kid}, {**claims, "sub": "alice"}, key)
    elif mutate == "hs256":
        token = pyjwt.encode(claims, "secret" * 6, algorithm="HS256", headers={"kid": kid})
    elif mutate == "none":
        header = b64url(json.dumps({"alg": "none", "kid": kid}).encode())
        token = f"{header}.{b64url(json.dumps(claims).encode())}."
    else:
        token = "not-a-token"
    with pytest.raises(InvalidJwtSvid, match=reason.replace("(", r"\(").replace(")", r"\)")):
        validate_jwt_svid(token, keys, audience="payments", now=NOW)


def test_signing_needs_an_audience() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidJwtSvid, match="audience"):
        sign_jwt_svid(key, "k", _claims(()))

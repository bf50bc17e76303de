"""ValidateJWTSVID's check on the agent: the bundle's keys, the domain's validator, and the
subject's trust domain."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from certfleet.agent.workload.jwt import JwtInvalid, jwt_keys, validate_jwt_svid
from certfleet.spiffe import JwtSvidClaims, SpiffeId, ec_public_jwk, sign_jwt_svid

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
KEY = ec.generate_private_key(ec.SECP256R1())
JWKS = {"keys": [ec_public_jwk(KEY.public_key(), use="jwt-svid", kid="k1")]}


def _token(subject: str, kid: str = "k1", audience: tuple[str, ...] = ("billing",)) -> str:
    claims = JwtSvidClaims(SpiffeId.parse(subject), audience, NOW, NOW + dt.timedelta(minutes=5))
    return sign_jwt_svid(KEY, kid, claims)


def test_a_token_of_the_trust_domain_is_valid() -> None:
    spiffe_id, claims = validate_jwt_svid(
        _token("spiffe://example.org/ns/web"), "billing", "example.org", JWKS, NOW
    )
    assert spiffe_id == "spiffe://example.org/ns/web"
    assert claims["aud"] == ["billing"] and claims["sub"] == spiffe_id


@pytest.mark.parametrize(
    ("token", "audience", "message"),
    [
        (_token("spiffe://other.org/ns/web"), "billing", "not in the trust domain example.org"),
        (_token("spiffe://example.org/ns/web", kid="k2"), "billing", "'k2' is not in the trust bundle"),
        (_token("spiffe://example.org/ns/web"), "payroll", "audience 'payroll'"),
    ],
)
def test_a_token_is_refused_with_the_reason(token: str, audience: str, message: str) -> None:
    with pytest.raises(JwtInvalid, match=message):
        validate_jwt_svid(token, audience, "example.org", JWKS, NOW)


def test_malformed_and_foreign_keys_of_the_bundle_are_left_out() -> None:
    good = JWKS["keys"][0]
    bundle = {
        "keys": [
            good,
            {**good, "kid": "short", "x": "AAAA"},
            {**good, "kid": "rsa", "kty": "RSA"},
            {**good, "kid": "off-curve", "y": good["x"]},
            "not a key",
        ]
    }
    assert list(jwt_keys(bundle)) == ["k1"]

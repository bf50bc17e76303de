"""SPIFFE workload identity: SPIFFE IDs, registration entries, selectors, JWT-SVIDs and the
trust bundle. Pure values and functions: the services sign and store, the agent attests."""

from __future__ import annotations

from certfleet.spiffe._bundle import JWT_SVID_USE, X509_SVID_USE, jwt_jwks, spiffe_bundle, x509_authority_jwk
from certfleet.spiffe._entries import (
    DEFAULT_SVID_TTL,
    MAX_SVID_TTL,
    MIN_SVID_TTL,
    RegistrationEntry,
    agent_spiffe_id,
    check_dns_name,
    new_entry_id,
    parse_ttl,
)
from certfleet.spiffe._ids import MAX_SPIFFE_ID_LENGTH, SpiffeId, TrustDomain
from certfleet.spiffe._jwt import (
    DEFAULT_JWT_TTL,
    JwtSvidClaims,
    ec_public_jwk,
    key_id,
    sign_jwt_svid,
    validate_jwt_svid,
)
from certfleet.spiffe._records import EntryRecord, JwtKeyRecord, SpiffeConfig
from certfleet.spiffe._selectors import UNIX_KEYS, Selector, entry_matches, parse_selectors
from certfleet.spiffe.errors import InvalidEntry, InvalidJwtSvid, InvalidSelector, InvalidSpiffeId

__all__ = [
    "DEFAULT_JWT_TTL",
    "DEFAULT_SVID_TTL",
    "JWT_SVID_USE",
    "MAX_SPIFFE_ID_LENGTH",
    "MAX_SVID_TTL",
    "MIN_SVID_TTL",
    "UNIX_KEYS",
    "X509_SVID_USE",
    "EntryRecord",
    "InvalidEntry",
    "InvalidJwtSvid",
    "InvalidSelector",
    "InvalidSpiffeId",
    "JwtKeyRecord",
    "JwtSvidClaims",
    "RegistrationEntry",
    "Selector",
    "SpiffeConfig",
    "SpiffeId",
    "TrustDomain",
    "agent_spiffe_id",
    "check_dns_name",
    "ec_public_jwk",
    "entry_matches",
    "jwt_jwks",
    "key_id",
    "new_entry_id",
    "parse_selectors",
    "parse_ttl",
    "sign_jwt_svid",
    "spiffe_bundle",
    "validate_jwt_svid",
    "x509_authority_jwk",
]

"""Who may do what: API tokens, scopes and name patterns."""

from __future__ import annotations

from certfleet.access._est_credentials import (
    EstCredential,
    EstCredentialRepository,
    MintedEstCredential,
    mint_est_credential,
)
from certfleet.access._tokens import (
    ApiToken,
    MintedToken,
    NamePattern,
    Principal,
    Scope,
    TokenRepository,
    check_secret,
    hash_secret,
    mint_token,
    split_token,
)

__all__ = [
    "ApiToken",
    "EstCredential",
    "EstCredentialRepository",
    "MintedEstCredential",
    "MintedToken",
    "NamePattern",
    "Principal",
    "Scope",
    "TokenRepository",
    "check_secret",
    "hash_secret",
    "mint_est_credential",
    "mint_token",
    "split_token",
]

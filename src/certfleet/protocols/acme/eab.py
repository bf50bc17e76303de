"""External account binding (RFC 8555 section 7.3.4): keys an operator hands out, each tying
new accounts to a team and its allowed names."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from josepy.jwk import JWK

from certfleet.protocols.acme.jws import b64decode, b64encode, load_public_jwk, thumbprint, verify_mac
from certfleet.protocols.acme.problems import AcmeProblem

__all__ = ["EabKey", "EabKeyRepository", "MintedEabKey", "check_binding", "mint_eab_key"]

HMAC_KEY_BYTES = 32


@dataclass(frozen=True)
class EabKey:
    """An EAB key, single use: ``account_id`` is set when an account binds it, and binding
    wipes the HMAC key, so a later copy of the database cannot mint accounts with it.

    ``hmac_key`` must be usable to verify a MAC (it is not a password that a hash could
    stand for): the store keeps it sealed under the secrets key (:mod:`certfleet.sealing`).
    It is ``None`` once bound, and in listings (a listing never unseals a key just to show
    its kid)."""

    kid: str
    hmac_key: bytes | None
    team: str
    allow_names: tuple[str, ...]
    created_at: dt.datetime
    description: str = ""
    account_id: str | None = None
    bound_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "team": self.team,
            "allow_names": list(self.allow_names),
            "description": self.description,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "account_id": self.account_id,
        }


@dataclass(frozen=True)
class MintedEabKey:
    record: EabKey

    @property
    def hmac_key_b64(self) -> str:
        if self.record.hmac_key is None:  # pragma: no cover - minting always sets it
            raise ValueError("a minted EAB key without its HMAC key")
        return b64encode(self.record.hmac_key)


def mint_eab_key(
    team: str, allow_names: Sequence[str], now: dt.datetime, description: str = ""
) -> MintedEabKey:
    return MintedEabKey(
        EabKey(
            kid=f"kid-{secrets.token_hex(8)}",
            hmac_key=secrets.token_bytes(HMAC_KEY_BYTES),
            team=team,
            allow_names=tuple(allow_names),
            created_at=now,
            description=description,
        )
    )


class EabKeyRepository(Protocol):
    def add(self, key: EabKey) -> None: ...

    def get(self, kid: str) -> EabKey | None:
        """The key with its HMAC key unsealed (``None`` once bound)."""
        ...

    def bind(self, kid: str, account_id: str, at: dt.datetime) -> bool:
        """Bind an unbound key and wipe its HMAC key; False when it was bound meanwhile
        (single use)."""
        ...

    def list(self) -> Sequence[EabKey]:
        """Every key, without its HMAC key."""
        ...

    def delete_unbound(self, kid: str) -> bool:
        """Delete a key no account has bound; False when there is none such (unknown, or
        bound meanwhile: a bound key stays, it records which account it made)."""
        ...


def check_binding(binding: object, account_jwk: JWK, url: str, lookup: EabKeyRepository) -> EabKey:
    """Verify an ``externalAccountBinding``: a JWS over the account key, MACed with the EAB
    key named by ``kid``, for this newAccount URL (RFC 8555 section 7.3.4)."""
    if not isinstance(binding, Mapping) or set(binding) != {"protected", "payload", "signature"}:
        raise AcmeProblem("malformed", "externalAccountBinding must be a flattened JWS")
    try:
        header = json.loads(b64decode(binding["protected"], "EAB protected header"))
    except ValueError as exc:
        raise AcmeProblem("malformed", "EAB protected header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise AcmeProblem("malformed", "EAB protected header must be a JSON object")
    if "nonce" in header:
        raise AcmeProblem("malformed", "EAB protected header must not carry a nonce")
    if header.get("url") != url:
        raise AcmeProblem("malformed", "EAB 'url' must equal the newAccount URL")
    kid = header.get("kid")
    key = lookup.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise AcmeProblem("unauthorized", f"unknown external account key id {kid!r}")
    if key.account_id is not None or key.hmac_key is None:
        # Bound: its HMAC key was wiped at binding, so no MAC can be checked any more.
        raise AcmeProblem("unauthorized", f"external account key {kid!r} is already bound to an account")
    verify_mac(binding, key.hmac_key)
    try:
        inner = json.loads(b64decode(binding["payload"], "EAB payload"))
    except ValueError as exc:
        raise AcmeProblem("malformed", "EAB payload is not a JWK") from exc
    if thumbprint(load_public_jwk(inner)) != thumbprint(account_jwk):
        raise AcmeProblem("malformed", "EAB payload is not the key that signs this request")
    return key

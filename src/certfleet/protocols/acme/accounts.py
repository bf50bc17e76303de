"""ACME accounts (RFC 8555 section 7.1.2 and 7.3): the record, its JSON form, contacts."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import re
import secrets
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any, Protocol

from josepy.jwk import JWK

from certfleet.protocols.acme.jws import load_public_jwk
from certfleet.protocols.acme.problems import AcmeProblem

__all__ = [
    "Account",
    "AccountRepository",
    "AccountStatus",
    "new_account_id",
    "parse_contacts",
]


@functools.lru_cache(maxsize=4096)
def _public_key(jwk_json: str) -> JWK:
    # A pure function of the stored text (read from the database on every request, so a key
    # change is seen at once in every process): parsing and checking the key once per text
    # saves rebuilding it on every request an account signs.
    return load_public_jwk(json.loads(jwk_json))


MAX_CONTACTS = 10
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class AccountStatus(enum.StrEnum):
    VALID = "valid"
    DEACTIVATED = "deactivated"
    REVOKED = "revoked"


def new_account_id() -> str:
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Account:
    """An account. ``team`` and ``allow_names`` come from its external account binding: a
    bound account issues only under that team's name patterns (``None``: unrestricted)."""

    id: str
    thumbprint: str
    jwk_json: str
    status: AccountStatus
    contacts: tuple[str, ...]
    tos_agreed: bool
    created_at: dt.datetime
    eab_kid: str | None = None
    team: str | None = None
    allow_names: tuple[str, ...] | None = None

    def key(self) -> JWK:
        return _public_key(self.jwk_json)

    def with_status(self, status: AccountStatus) -> Account:
        return replace(self, status=status)

    def to_json(self, orders_url: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": self.status.value,
            "contact": list(self.contacts),
            "termsOfServiceAgreed": self.tos_agreed,
            "orders": orders_url,
            "key": json.loads(self.jwk_json),
            "createdAt": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if self.eab_kid:
            body["externalAccountBinding"] = {"kid": self.eab_kid}
        return body


def parse_contacts(raw: object) -> tuple[str, ...]:
    """RFC 8555 section 7.3: ``mailto:`` URIs only; one address each, no header fields."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise AcmeProblem("malformed", "contact must be a list of URI strings")
    if len(raw) > MAX_CONTACTS:
        raise AcmeProblem("invalidContact", f"at most {MAX_CONTACTS} contacts")
    contacts: dict[str, None] = {}
    for uri in raw:
        scheme, _, address = uri.partition(":")
        if scheme.lower() != "mailto":
            raise AcmeProblem("unsupportedContact", f"contact {uri!r} is not a mailto: URI")
        address = urllib.parse.unquote(address)
        if "?" in address or "," in address or not _EMAIL.match(address):
            raise AcmeProblem("invalidContact", f"contact {uri!r} is not a single e-mail address")
        contacts.setdefault(f"mailto:{address}", None)
    return tuple(contacts)


class AccountRepository(Protocol):
    def add(self, account: Account) -> None:
        """Insert. Raises Conflict when the key (thumbprint) already has an account."""
        ...

    def get(self, account_id: str) -> Account | None: ...

    def get_by_thumbprint(self, thumbprint: str) -> Account | None: ...

    def update(self, account: Account) -> None:
        """Store status, contacts and key. Raises Conflict when the key is another's."""
        ...

"""Orders (RFC 8555 sections 7.1.3 and 7.4): the record, its JSON form and its states."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from certfleet.protocols.acme.identifiers import Identifier

__all__ = ["ORDER_LIFETIME", "Order", "OrderRepository", "OrderStatus", "new_order_id"]

ORDER_LIFETIME = dt.timedelta(days=7)


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


def new_order_id() -> str:
    return secrets.token_urlsafe(12)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Order:
    id: str
    account_id: str
    status: OrderStatus
    identifiers: tuple[Identifier, ...]
    authz_ids: tuple[str, ...]
    expires_at: dt.datetime
    created_at: dt.datetime
    profile: str
    replaces: str | None = None
    error: dict[str, Any] | None = None
    certificate_serial: str | None = None
    certificate_chain: str | None = None

    def effective_status(self, now: dt.datetime) -> OrderStatus:
        if self.status in (OrderStatus.PENDING, OrderStatus.READY) and self.expires_at <= now:
            return OrderStatus.INVALID
        return self.status

    def to_json(
        self,
        now: dt.datetime,
        *,
        authz_url: Callable[[str], str],
        finalize_url: str,
        certificate_url: str,
    ) -> dict[str, Any]:
        status = self.effective_status(now)
        body: dict[str, Any] = {
            "status": status.value,
            "expires": _iso(self.expires_at),
            "identifiers": [i.to_json() for i in self.identifiers],
            "authorizations": [authz_url(a) for a in self.authz_ids],
            "finalize": finalize_url,
            "profile": self.profile,
        }
        if self.replaces:
            body["replaces"] = self.replaces
        if self.error:
            body["error"] = self.error
        elif status is OrderStatus.INVALID and self.status is not OrderStatus.INVALID:
            body["error"] = {
                "type": "urn:ietf:params:acme:error:malformed",
                "detail": "the order expired",
                "status": 400,
            }
        if status is OrderStatus.VALID and self.certificate_serial:
            body["certificate"] = certificate_url
        return body


class OrderRepository(Protocol):
    def add(self, order: Order) -> None: ...

    def get(self, order_id: str, *, lock: bool = False) -> Order | None:
        """``lock`` takes a row lock (PostgreSQL) until the transaction ends."""
        ...

    def list_for_account(self, account_id: str, limit: int) -> Sequence[str]:
        """Ids of the account's orders, newest first."""
        ...

    def ids_for_authorization(self, authz_id: str) -> Sequence[str]: ...

    def transition(
        self,
        order_id: str,
        to: OrderStatus,
        *,
        expected: Sequence[OrderStatus],
        error: dict[str, Any] | None = None,
        at: dt.datetime | None = None,
        processing_since: dt.datetime | None = None,
    ) -> bool:
        """Conditional UPDATE: False when the stored status is not one of ``expected``. This
        is what makes one finalize win when several race (RFC 8555 section 7.4). ``at`` is
        when an order entered ``processing`` (see :meth:`stalled`); ``processing_since``:
        only if it entered ``processing`` then (a finalize undoing its own claim, never
        another's)."""
        ...

    def stalled(self, before: dt.datetime) -> Sequence[str]:
        """Orders processing since before ``before``: their finalize died with its process."""
        ...

    def complete(self, order_id: str, serial: str, chain_pem: str) -> bool:
        """processing -> valid with the certificate; False when it was not processing."""
        ...

    def find_by_certificate(self, serial: str) -> Order | None: ...

    def replacing(self, cert_id: str) -> Sequence[Order]:
        """Orders whose ``replaces`` names this ARI certificate identifier."""
        ...

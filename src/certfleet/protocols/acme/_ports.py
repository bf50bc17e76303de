"""What the ACME server needs from the rest of certfleet, declared here and implemented
elsewhere (storage by ``certfleet.store``, issuance and revocation wired by the composition
root), so the protocol never imports the CA or the database."""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from certfleet.audit import AuditRepository
from certfleet.inventory import CertificateRepository
from certfleet.protocols.acme.accounts import AccountRepository
from certfleet.protocols.acme.ari import RenewalRepository
from certfleet.protocols.acme.authorizations import AuthorizationRepository
from certfleet.protocols.acme.eab import EabKeyRepository
from certfleet.protocols.acme.nonces import NonceRepository
from certfleet.protocols.acme.orders import OrderRepository

__all__ = [
    "AcmeRepositories",
    "AcmeUnitOfWork",
    "AcmeUnitOfWorkFactory",
    "FinalizeClaim",
    "IssueOrder",
    "IssuedChain",
    "Issuer",
    "OrderIssued",
    "Revoker",
]


class AcmeRepositories(Protocol):
    @property
    def nonces(self) -> NonceRepository: ...

    @property
    def accounts(self) -> AccountRepository: ...

    @property
    def eab_keys(self) -> EabKeyRepository: ...

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def authorizations(self) -> AuthorizationRepository: ...

    @property
    def renewals(self) -> RenewalRepository: ...


class AcmeUnitOfWork(Protocol):
    """Repositories sharing one transaction."""

    @property
    def acme(self) -> AcmeRepositories: ...

    @property
    def certificates(self) -> CertificateRepository: ...

    @property
    def audit(self) -> AuditRepository: ...


class AcmeUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> AbstractContextManager[AcmeUnitOfWork]:
        """One transaction. ``read_only`` promises the block only reads: on SQLite it then
        takes no write lock (it never waits for a writer, nor makes one wait)."""
        ...


@dataclass(frozen=True)
class FinalizeClaim:
    """Finalize's move of its order from ``ready`` to ``processing`` (``processing_since`` =
    ``at``), written by the issuance ledger in the transaction that reserves the
    certificate's serial, before signing, and only while every authorization of the order is
    still valid and the order unexpired. Of concurrent finalizes of one order exactly one
    reserves a serial; the others are refused with nothing written."""

    order_id: str
    at: dt.datetime


@dataclass(frozen=True)
class OrderIssued:
    """The order's move from ``processing`` to ``valid`` with its certificate (the serial is
    the inventory record's), written in the transaction that records the certificate."""

    order_id: str
    chain_pem: str


@dataclass(frozen=True)
class IssueOrder:
    """What finalize asks the CA for. ``allow_names`` is ``None`` for an account without a
    team binding (its names are proven by validation alone), else the team's patterns.
    ``claim``: the order's own move to processing and then valid, written in issuance's two
    transactions (``None``: the caller moves the order itself)."""

    csr: x509.CertificateSigningRequest
    names: tuple[str, ...]
    common_name: str | None
    profile: str
    team: str | None
    allow_names: tuple[str, ...] | None
    actor: str
    claim: FinalizeClaim | None = None


@dataclass(frozen=True)
class IssuedChain:
    serial: str
    chain_pem: str  # leaf first, then the issuing chain (RFC 8555 section 9.1)
    not_before: dt.datetime
    not_after: dt.datetime


class Issuer(Protocol):
    def issue(self, order: IssueOrder) -> IssuedChain:
        """Issue through the CA core, profiles and name policy; raise a CertfleetError on
        refusal, recording nothing but an audit entry."""
        ...


class Revoker(Protocol):
    def revoke(self, serial: str, reason: str, *, actor: str) -> None:
        """Revoke; raise Conflict when already revoked. ``keyCompromise`` blocks the key."""
        ...

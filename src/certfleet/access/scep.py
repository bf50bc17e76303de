"""Who may enrol over SCEP and what came of it: challenge passwords (only their hash is
kept) and transactions (one per transactionID, RFC 8894 section 3.2.1.1), with the store
interface the SCEP service needs."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from certfleet.errors import InvalidInput

__all__ = [
    "CHALLENGE_USED_UP",
    "REPLAYED",
    "EnrolmentRefused",
    "Refusal",
    "ScepChallenge",
    "ScepClaim",
    "ScepIssued",
    "ScepStore",
    "ScepTransaction",
    "TransactionStatus",
]


class TransactionStatus(enum.StrEnum):
    ISSUING = "issuing"  # taken by the request being answered right now
    PENDING = "pending"  # waiting for ``certfleet scep approve``
    ISSUED = "issued"
    REJECTED = "rejected"


class Refusal(enum.Enum):
    """Why an enrolment was refused; the protocol maps each to a failInfo."""

    CHALLENGE = "challenge"  # unknown, expired, used up or wrong challenge password
    NAMES = "names"  # the CSR names something the challenge (or renewed certificate) does not
    POLICY = "policy"  # the issuance service refused (policy engine, blocked key, profile)
    UNKNOWN_CERTIFICATE = "unknown-certificate"  # RenewalReq signed by no certificate of ours
    REJECTED = "rejected"  # an operator rejected the pending request


class EnrolmentRefused(InvalidInput):
    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.refusal = refusal


@dataclass(frozen=True)
class ScepChallenge:
    id: str
    secret_hash: str
    team: str
    profile: str
    allow_names: tuple[str, ...]
    uses_left: int
    manual_approval: bool
    expires_at: dt.datetime
    created_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team": self.team,
            "profile": self.profile,
            "allow_names": list(self.allow_names),
            "uses_left": self.uses_left,
            "manual_approval": self.manual_approval,
            "expires_at": self.expires_at.isoformat(),
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class ScepTransaction:
    transaction_id: str
    status: TransactionStatus
    team: str | None
    profile: str
    challenge_id: str | None
    renews_serial: str | None
    csr_der: bytes
    serial: str | None
    chain_pem: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "transaction_id": self.transaction_id,
            "status": self.status.value,
            "team": self.team,
            "profile": self.profile,
            "challenge_id": self.challenge_id,
            "renews_serial": self.renews_serial,
            "serial": self.serial,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


# What a SCEP enrolment writes inside issuance's own two transactions (the annexes of
# ``services.issuance.LedgerAnnex``, written by ``store._scep_ledger.SqlScepLedger``) instead
# of transactions of its own: with the serial, before signing, its transaction row (the
# primary key lets one request per transactionID through) and the challenge's use; with the
# certificate, after signing, the row's result. The reasons the ledger gives when it writes
# nothing (``AnnexRefused.reason``):
REPLAYED = "transactionID already on record"
CHALLENGE_USED_UP = "challenge expired or used up"


@dataclass(frozen=True)
class ScepClaim:
    """Insert ``transaction`` (REPLAYED if its ID exists) and, with ``spend_use_of``, spend
    one use of that challenge if it has one left and has not expired at the transaction's
    ``created_at`` (CHALLENGE_USED_UP otherwise, and the row is not kept)."""

    transaction: ScepTransaction
    spend_use_of: str | None


@dataclass(frozen=True)
class ScepIssued:
    """Move the transaction from ``expected`` to ISSUED with its certificate."""

    transaction_id: str
    expected: TransactionStatus
    serial: str
    chain_pem: str
    at: dt.datetime


class ScepStore(Protocol):
    def add_challenge(self, challenge: ScepChallenge) -> None: ...
    def challenge(self, challenge_id: str) -> ScepChallenge | None: ...
    def challenges(self) -> Sequence[ScepChallenge]: ...
    def give_back_use(self, challenge_id: str) -> None: ...
    def begin_transaction(
        self, transaction: ScepTransaction, *, spend_use_of: str | None = None
    ) -> ScepTransaction | Literal[False] | None:
        """Record a new transaction (None), or return the one of that ID; with
        ``spend_use_of``, in the same transaction spend a use of that challenge, or change
        nothing and return False when none is left."""
        ...

    def transaction(self, transaction_id: str) -> ScepTransaction | None: ...
    def transactions(self, status: TransactionStatus | None = None) -> Sequence[ScepTransaction]: ...
    def move(
        self,
        transaction_id: str,
        expected: TransactionStatus,
        status: TransactionStatus,
        now: dt.datetime,
        *,
        serial: str | None = None,
        chain_pem: str | None = None,
    ) -> bool: ...
    def forget(self, transaction_id: str) -> None: ...
    def abandon(self, transaction_id: str, *, give_back: bool) -> None:
        """Drop a row still ISSUING (its certificate was not recorded) and, with
        ``give_back``, return the use its challenge spent, in one transaction."""
        ...

"""SCEP challenges and transactions (tables of migration 0020_scep). Short transactions of
their own, like the revocation store: a SCEP request touches these rows and then goes
through the issuance service, which keeps its own batched writes.

The per-enrolment statements (look-ups, the transaction's start and its move to ISSUED) are
SQLAlchemy Core on a pooled connection, each compiled once: an ORM session and its
identity map cost about 3 ms of CPU per look-up here, more than the statement itself."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Literal, cast

from sqlalchemy import (
    Boolean,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.access.scep import ScepChallenge, ScepTransaction, TransactionStatus
from certfleet.store._database import Database
from certfleet.store._sql import rowcount
from certfleet.store.models import Base, UtcDateTime

__all__ = [
    "MOVE",
    "SPEND_USE",
    "TRANSACTION_COLUMNS",
    "ScepChallengeRow",
    "ScepTransactionRow",
    "SqlScepStore",
    "transaction_row",
]


class ScepChallengeRow(Base):
    """``secret_hash``: SHA-256 of the challenge's secret part (never the secret)."""

    __tablename__ = "scep_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    team: Mapped[str] = mapped_column(String(100))
    profile: Mapped[str] = mapped_column(String(64))
    allow_names_json: Mapped[str] = mapped_column(Text)
    uses_left: Mapped[int] = mapped_column(Integer)
    manual_approval: Mapped[bool] = mapped_column(Boolean)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ScepTransactionRow(Base):
    __tablename__ = "scep_transactions"

    transaction_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    team: Mapped[str | None] = mapped_column(String(100))
    profile: Mapped[str] = mapped_column(String(64))
    challenge_id: Mapped[str | None] = mapped_column(String(32))
    renews_serial: Mapped[str | None] = mapped_column(String(64))
    csr_der: Mapped[bytes] = mapped_column(LargeBinary)
    serial: Mapped[str | None] = mapped_column(String(64))
    chain_pem: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


_CHALLENGES = cast(Table, ScepChallengeRow.__table__)
_TRANSACTIONS = cast(Table, ScepTransactionRow.__table__)
_GET_CHALLENGE = select(_CHALLENGES).where(_CHALLENGES.c.id == bindparam("b_id"))
_GET_TRANSACTION = select(_TRANSACTIONS).where(_TRANSACTIONS.c.transaction_id == bindparam("b_id"))
SPEND_USE = (
    update(_CHALLENGES)
    .where(
        _CHALLENGES.c.id == bindparam("b_id"),
        _CHALLENGES.c.uses_left > 0,
        _CHALLENGES.c.expires_at > bindparam("b_now"),
    )
    .values(uses_left=_CHALLENGES.c.uses_left - 1)
)
# A transaction's move from ``b_expected`` to ``b_status`` (an approval, or issuance's record
# transaction moving it to ISSUED in store._scep_ledger): nothing if another request moved it first.
MOVE = (
    update(_TRANSACTIONS)
    .where(
        _TRANSACTIONS.c.transaction_id == bindparam("b_id"),
        _TRANSACTIONS.c.status == bindparam("b_expected"),
    )
    .values(
        status=bindparam("b_status"),
        serial=bindparam("b_serial"),
        chain_pem=bindparam("b_chain_pem"),
        updated_at=bindparam("b_now"),
    )
)


class _UsedUp(Exception):  # rolls the new transaction row back; never leaves this module
    pass


def _challenge(row: Any) -> ScepChallenge:  # a ScepChallengeRow or a Core row of its table
    return ScepChallenge(
        id=row.id,
        secret_hash=row.secret_hash,
        team=row.team,
        profile=row.profile,
        allow_names=tuple(json.loads(row.allow_names_json)),
        uses_left=row.uses_left,
        manual_approval=row.manual_approval,
        expires_at=row.expires_at,
        created_at=row.created_at,
    )


def _transaction(row: Any) -> ScepTransaction:  # a ScepTransactionRow or a Core row
    return ScepTransaction(
        transaction_id=row.transaction_id,
        status=TransactionStatus(row.status),
        team=row.team,
        profile=row.profile,
        challenge_id=row.challenge_id,
        renews_serial=row.renews_serial,
        csr_der=row.csr_der,
        serial=row.serial,
        chain_pem=row.chain_pem,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


TRANSACTION_COLUMNS = (
    "transaction_id", "status", "team", "profile", "challenge_id", "renews_serial", "csr_der", "serial",
    "chain_pem", "created_at", "updated_at",
)  # fmt: skip


def transaction_row(transaction: ScepTransaction) -> dict[str, Any]:
    """The row a new transaction is inserted as (no certificate yet)."""
    return {
        "transaction_id": transaction.transaction_id,
        "status": transaction.status.value,
        "team": transaction.team,
        "profile": transaction.profile,
        "challenge_id": transaction.challenge_id,
        "renews_serial": transaction.renews_serial,
        "csr_der": transaction.csr_der,
        "serial": None,
        "chain_pem": None,
        "created_at": transaction.created_at,
        "updated_at": transaction.updated_at,
    }


class SqlScepStore:
    """Implements ``certfleet.access.scep.ScepStore``."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._engine = database.engine
        self._reader = database.engine.execution_options(certfleet_read_only=True)

    def add_challenge(self, challenge: ScepChallenge) -> None:
        with self._database.session() as session:
            session.add(
                ScepChallengeRow(
                    id=challenge.id,
                    secret_hash=challenge.secret_hash,
                    team=challenge.team,
                    profile=challenge.profile,
                    allow_names_json=json.dumps(list(challenge.allow_names)),
                    uses_left=challenge.uses_left,
                    manual_approval=challenge.manual_approval,
                    expires_at=challenge.expires_at,
                    created_at=challenge.created_at,
                )
            )

    def challenge(self, challenge_id: str) -> ScepChallenge | None:
        with self._reader.connect() as conn:
            row = conn.execute(_GET_CHALLENGE, {"b_id": challenge_id}).first()
        return None if row is None else _challenge(row)

    def challenges(self) -> Sequence[ScepChallenge]:
        with self._database.session(read_only=True) as session:
            rows = session.scalars(select(ScepChallengeRow).order_by(ScepChallengeRow.created_at))
            return [_challenge(r) for r in rows]

    def give_back_use(self, challenge_id: str) -> None:
        """The issuance a use was taken for was refused: the challenge keeps it."""
        with self._database.session() as session:
            session.execute(
                update(ScepChallengeRow)
                .where(ScepChallengeRow.id == challenge_id)
                .values(uses_left=ScepChallengeRow.uses_left + 1)
            )

    def begin_transaction(
        self, transaction: ScepTransaction, *, spend_use_of: str | None = None
    ) -> ScepTransaction | Literal[False] | None:
        """Record a new transaction; if its ID exists already, return the stored one and
        change nothing (the primary key decides a race between two identical requests).
        ``spend_use_of``: one use of that challenge, spent in the same transaction (False,
        and nothing written, when it has none left or expired)."""
        row = transaction_row(transaction)
        try:
            with self._engine.begin() as conn:
                # The insert first: an existing ID fails it before any use is spent.
                conn.execute(insert(_TRANSACTIONS), row)
                if spend_use_of is not None:
                    spent = conn.execute(SPEND_USE, {"b_id": spend_use_of, "b_now": transaction.created_at})
                    if rowcount(spent) != 1:
                        raise _UsedUp
            return None
        except _UsedUp:
            return False
        except IntegrityError:
            return self.transaction(transaction.transaction_id)

    def transaction(self, transaction_id: str) -> ScepTransaction | None:
        with self._reader.connect() as conn:
            row = conn.execute(_GET_TRANSACTION, {"b_id": transaction_id}).first()
        return None if row is None else _transaction(row)

    def transactions(self, status: TransactionStatus | None = None) -> Sequence[ScepTransaction]:
        with self._database.session(read_only=True) as session:
            query = select(ScepTransactionRow).order_by(ScepTransactionRow.created_at)
            if status is not None:
                query = query.where(ScepTransactionRow.status == status.value)
            return [_transaction(r) for r in session.scalars(query)]

    def move(
        self,
        transaction_id: str,
        expected: TransactionStatus,
        status: TransactionStatus,
        now: dt.datetime,
        *,
        serial: str | None = None,
        chain_pem: str | None = None,
    ) -> bool:
        """Change the status if it is still ``expected`` (approval races a second approval)."""
        with self._engine.begin() as conn:
            result = conn.execute(
                MOVE,
                {
                    "b_id": transaction_id,
                    "b_expected": expected.value,
                    "b_status": status.value,
                    "b_serial": serial,
                    "b_chain_pem": chain_pem,
                    "b_now": now,
                },
            )
            return rowcount(result) == 1

    def abandon(self, transaction_id: str, *, give_back: bool) -> None:
        """A transaction claimed with its serial whose certificate was then not recorded:
        the row goes and, with ``give_back``, its challenge gets back the use it spent, in
        one transaction (a row another request already moved on is left alone)."""
        with self._engine.begin() as conn:
            row = conn.execute(_GET_TRANSACTION, {"b_id": transaction_id}).first()
            if row is None or row.status != TransactionStatus.ISSUING.value:
                return
            gone = conn.execute(
                delete(_TRANSACTIONS).where(
                    _TRANSACTIONS.c.transaction_id == transaction_id,
                    _TRANSACTIONS.c.status == TransactionStatus.ISSUING.value,
                )
            )
            if give_back and rowcount(gone) == 1 and row.challenge_id is not None:
                conn.execute(
                    update(_CHALLENGES)
                    .where(_CHALLENGES.c.id == row.challenge_id)
                    .values(uses_left=_CHALLENGES.c.uses_left + 1)
                )

    def forget(self, transaction_id: str) -> None:
        """A transaction refused before any certificate: nothing of it stays on record."""
        with self._database.session() as session:
            session.execute(
                delete(ScepTransactionRow).where(ScepTransactionRow.transaction_id == transaction_id)
            )

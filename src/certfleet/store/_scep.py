"""SCEP challenges and transactions (tables of migration 0020_scep). Short transactions of
their own, like the revocation store: a SCEP request touches these rows and then goes
through the issuance service, which keeps its own batched writes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import Boolean, Integer, LargeBinary, String, Text, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.access.scep import ScepChallenge, ScepTransaction, TransactionStatus
from certfleet.store._database import Database
from certfleet.store._sql import rowcount
from certfleet.store.models import Base, UtcDateTime

__all__ = ["ScepChallengeRow", "ScepTransactionRow", "SqlScepStore"]


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


def _challenge(row: ScepChallengeRow) -> ScepChallenge:
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


def _transaction(row: ScepTransactionRow) -> ScepTransaction:
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


class SqlScepStore:
    """Implements ``certfleet.access.scep.ScepStore``."""

    def __init__(self, database: Database) -> None:
        self._database = database

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
        with self._database.session(read_only=True) as session:
            row = session.get(ScepChallengeRow, challenge_id)
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
        try:
            with self._database.session() as session:
                existing = session.get(ScepTransactionRow, transaction.transaction_id)
                if existing is not None:
                    return _transaction(existing)
                if spend_use_of is not None:
                    spent = session.execute(
                        update(ScepChallengeRow)
                        .where(
                            ScepChallengeRow.id == spend_use_of,
                            ScepChallengeRow.uses_left > 0,
                            ScepChallengeRow.expires_at > transaction.created_at,
                        )
                        .values(uses_left=ScepChallengeRow.uses_left - 1)
                    )
                    if rowcount(spent) != 1:
                        return False
                session.add(
                    ScepTransactionRow(
                        transaction_id=transaction.transaction_id,
                        status=transaction.status.value,
                        team=transaction.team,
                        profile=transaction.profile,
                        challenge_id=transaction.challenge_id,
                        renews_serial=transaction.renews_serial,
                        csr_der=transaction.csr_der,
                        serial=None,
                        chain_pem=None,
                        created_at=transaction.created_at,
                        updated_at=transaction.updated_at,
                    )
                )
            return None
        except IntegrityError:
            return self.transaction(transaction.transaction_id)

    def transaction(self, transaction_id: str) -> ScepTransaction | None:
        with self._database.session(read_only=True) as session:
            row = session.get(ScepTransactionRow, transaction_id)
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
        with self._database.session() as session:
            result = session.execute(
                update(ScepTransactionRow)
                .where(
                    ScepTransactionRow.transaction_id == transaction_id,
                    ScepTransactionRow.status == expected.value,
                )
                .values(status=status.value, serial=serial, chain_pem=chain_pem, updated_at=now)
            )
            return rowcount(result) == 1

    def forget(self, transaction_id: str) -> None:
        """A transaction refused before any certificate: nothing of it stays on record."""
        with self._database.session() as session:
            session.execute(
                delete(ScepTransactionRow).where(ScepTransactionRow.transaction_id == transaction_id)
            )

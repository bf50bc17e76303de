"""The issuance ledger of SCEP: the standard two batched writes, plus the SCEP transaction
row and the challenge's use in the serial's transaction and the row's result in the record's
(``access.scep.ScepClaim``, ``ScepIssued``). An enrolment thus costs the two write transactions of any
issuance instead of four, and a replayed transactionID or a challenge's last use taken
twice is decided where the serial is: in one transaction, before anything is signed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Connection, Dialect, Table, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from certfleet.access.scep import CHALLENGE_USED_UP, REPLAYED, ScepClaim, ScepIssued, TransactionStatus
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.issuance import IssuedEntry, SerialClaim
from certfleet.store._database import Database
from certfleet.store._issuance_ledger import DriverStatement, SqlIssuanceLedger, compiled_once
from certfleet.store._scep import (
    MOVE,
    SPEND_USE,
    TRANSACTION_COLUMNS,
    ScepChallengeRow,
    ScepTransactionRow,
    transaction_row,
)

__all__ = ["SqlScepLedger"]

_CHALLENGES = cast(Table, ScepChallengeRow.__table__)
_TRANSACTIONS = cast(Table, ScepTransactionRow.__table__)
# A row whose ID exists is not inserted, and the transaction goes on (no IntegrityError to
# roll the batch back): on PostgreSQL a concurrent insert of the same ID waits for the first
# to commit and then inserts nothing.
# The inserted key is returned (psycopg reports no rowcount for this INSERT).
_INSERT = {
    name: dialect.insert(_TRANSACTIONS)
    .on_conflict_do_nothing(index_elements=["transaction_id"])
    .returning(_TRANSACTIONS.c.transaction_id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_DROP = delete(_TRANSACTIONS).where(_TRANSACTIONS.c.transaction_id == bindparam("b_id"))


class _Statements:
    """SCEP's annex statements for one dialect, run on the driver like the ledger's own."""

    def __init__(self, dialect: Dialect) -> None:
        self.insert = DriverStatement(_INSERT[dialect.name], dialect, TRANSACTION_COLUMNS)
        self.spend_use = DriverStatement(SPEND_USE, dialect)
        self.move = DriverStatement(MOVE, dialect)


class SqlScepLedger(SqlIssuanceLedger):
    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._scep = compiled_once(_Statements, self._engine.dialect)

    def _claim_annex(self, conn: Connection, claim: SerialClaim) -> str | None:
        annex = claim.annex
        if not isinstance(annex, ScepClaim):
            return super()._claim_annex(conn, claim)
        transaction = annex.transaction
        # The row first: a replay is refused before it could spend a use.
        if not self._scep.insert.execute(conn, transaction_row(transaction)).fetchall():
            return REPLAYED
        if annex.spend_use_of is not None:
            spent = self._scep.spend_use.execute(
                conn, {"b_id": annex.spend_use_of, "b_now": transaction.created_at}
            )
            if spent.rowcount != 1:
                conn.execute(_DROP, {"b_id": transaction.transaction_id})
                return CHALLENGE_USED_UP
        return None

    def _record_annexes(
        self, conn: Connection, entries: Sequence[IssuedEntry], stored: Sequence[CertificateRecord]
    ) -> None:
        issued = [e.annex for e in entries if e.annex is not None]
        if not all(isinstance(a, ScepIssued) for a in issued):
            super()._record_annexes(conn, entries, stored)
        self._scep.move.execute_many(
            conn,
            [
                {
                    "b_id": a.transaction_id,
                    "b_expected": a.expected.value,
                    "b_status": TransactionStatus.ISSUED.value,
                    "b_serial": a.serial,
                    "b_chain_pem": a.chain_pem,
                    "b_now": a.at,
                }
                for a in cast(list[ScepIssued], issued)
            ],
        )

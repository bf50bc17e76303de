"""The issuance ledger of SCEP: the standard two batched writes, plus the SCEP transaction
row and the challenge's use in the serial's transaction and the row's result in the record's
(``access.scep.ScepClaim``, ``ScepIssued``). An enrolment thus costs the two write transactions of any
issuance instead of four, and a replayed transactionID or a challenge's last use taken
twice is decided where the serial is: in one transaction, before anything is signed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from certfleet.access.scep import CHALLENGE_USED_UP, REPLAYED, ScepClaim, ScepIssued, TransactionStatus
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.issuance import IssuedEntry, SerialClaim
from certfleet.store._database import Database
from certfleet.store._issuance_ledger import SqlIssuanceLedger
from certfleet.store._scep import MOVE, SPEND_USE, ScepChallengeRow, ScepTransactionRow, transaction_row
from certfleet.store._sql import rowcount

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


class SqlScepLedger(SqlIssuanceLedger):
    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._insert = _INSERT["postgresql" if self._postgresql else "sqlite"]

    def _claim_annex(self, conn: Connection, claim: SerialClaim) -> str | None:
        annex = claim.annex
        if not isinstance(annex, ScepClaim):
            return super()._claim_annex(conn, claim)
        transaction = annex.transaction
        # The row first: a replay is refused before it could spend a use.
        if conn.execute(self._insert, transaction_row(transaction)).first() is None:
            return REPLAYED
        if annex.spend_use_of is not None:
            spent = conn.execute(SPEND_USE, {"b_id": annex.spend_use_of, "b_now": transaction.created_at})
            if rowcount(spent) != 1:
                conn.execute(_DROP, {"b_id": transaction.transaction_id})
                return CHALLENGE_USED_UP
        return None

    def _record_annexes(
        self, conn: Connection, entries: Sequence[IssuedEntry], stored: Sequence[CertificateRecord]
    ) -> None:
        issued = [e.annex for e in entries if e.annex is not None]
        if not all(isinstance(a, ScepIssued) for a in issued):
            super()._record_annexes(conn, entries, stored)
        conn.execute(
            MOVE,
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

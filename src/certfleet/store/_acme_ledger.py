"""The issuance ledger with ACME's finalize in it: the standard two batched writes, plus the
order's move to ``processing`` in the serial's transaction and its move to ``valid`` with the
certificate in the record's (``protocols.acme.FinalizeClaim``, ``OrderIssued``).

A finalize thus costs issuance's two group-committed write transactions instead of four
(order to processing, serial, record, order complete), and "one certificate per order" is
decided where the serial is: the conditional UPDATE that moves the order is in the
transaction that reserves the serial, before anything is signed, so of two concurrent
finalizes of one order only one reserves a serial. The same UPDATE re-checks, in that
transaction, that every authorization of the order is still valid (one deactivated since
finalize read it is seen, or on SQLite waits for the writer that deactivates it).

Entries without an annex (REST, the CLI, renewal, agents) are written as by the standard
ledger, so the one issuance service keeps one ledger and one group commit for every path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Connection, Table, and_, bindparam, exists, select, update

from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.issuance import IssuedEntry, SerialClaim
from certfleet.protocols.acme import AuthzStatus, FinalizeClaim, OrderIssued, OrderStatus
from certfleet.store._acme_models import AcmeAuthorizationRow, AcmeOrderAuthorizationRow, AcmeOrderRow
from certfleet.store._database import Database
from certfleet.store._issuance_ledger import SqlIssuanceLedger
from certfleet.store._sql import rowcount

__all__ = ["ORDER_NOT_READY", "SqlAcmeLedger", "acme_issuance_ledger"]

# Why a finalize's claim was refused (``AnnexRefused.reason``).
ORDER_NOT_READY = (
    "the order is no longer ready (finalized concurrently, expired, or an authorization changed)"
)

_ORDERS = cast(Table, AcmeOrderRow.__table__)
_LINKS = cast(Table, AcmeOrderAuthorizationRow.__table__)
_AUTHZ = cast(Table, AcmeAuthorizationRow.__table__)

_NOT_VALID = exists(
    select(_LINKS.c.authz_id)
    .join(_AUTHZ, _AUTHZ.c.id == _LINKS.c.authz_id)
    .where(
        _LINKS.c.order_id == _ORDERS.c.id,
        (_AUTHZ.c.status != AuthzStatus.VALID.value) | (_AUTHZ.c.expires_at <= bindparam("b_at")),
    )
)
_TO_PROCESSING = (
    update(_ORDERS)
    .where(
        and_(
            _ORDERS.c.id == bindparam("b_id"),
            _ORDERS.c.status == OrderStatus.READY.value,
            _ORDERS.c.expires_at > bindparam("b_at"),
            ~_NOT_VALID,
        )
    )
    .values(status=OrderStatus.PROCESSING.value, processing_since=bindparam("b_at"))
)
_TO_VALID = (
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("b_id"), _ORDERS.c.status == OrderStatus.PROCESSING.value)
    .values(
        status=OrderStatus.VALID.value,
        certificate_serial=bindparam("b_serial"),
        certificate_chain=bindparam("b_chain"),
        processing_since=None,
    )
)


class SqlAcmeLedger(SqlIssuanceLedger):
    def _claim_annex(self, conn: Connection, claim: SerialClaim) -> str | None:
        annex = claim.annex
        if not isinstance(annex, FinalizeClaim):
            return super()._claim_annex(conn, claim)
        moved = conn.execute(_TO_PROCESSING, {"b_id": annex.order_id, "b_at": annex.at})
        return None if rowcount(moved) == 1 else ORDER_NOT_READY

    def _record_annexes(
        self, conn: Connection, entries: Sequence[IssuedEntry], stored: Sequence[CertificateRecord]
    ) -> None:
        issued = [(e.annex, r) for e, r in zip(entries, stored, strict=True) if e.annex is not None]
        if not all(isinstance(a, OrderIssued) for a, _ in issued):
            super()._record_annexes(conn, entries, stored)
        conn.execute(
            _TO_VALID,
            [
                {"b_id": a.order_id, "b_serial": r.serial, "b_chain": a.chain_pem}
                for a, r in cast(list[tuple[OrderIssued, CertificateRecord]], issued)
            ],
        )


def acme_issuance_ledger(database: Database) -> SqlAcmeLedger:
    """The issuance service's ledger: the standard one, plus ACME's finalize annexes."""
    return SqlAcmeLedger(database)

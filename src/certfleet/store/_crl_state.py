"""The per-CA ``crl_state`` row: the revocation sequence and CRL numbers, each advanced by
one locked UPDATE so concurrent writers never hand out a number twice."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from certfleet.store._revocation_models import (
    CrlStateRow,
)

__all__ = ["ensure_state", "increment"]


def ensure_state(session: Session, ca_id: str) -> None:
    if session.get(CrlStateRow, ca_id) is not None:
        return
    try:
        with session.begin_nested():
            session.add(CrlStateRow(ca_id=ca_id, revocation_seq=0, last_number=0, base_seq=0))
            session.flush()
    except SqlIntegrityError:
        pass  # another writer created it


def increment(session: Session, ca_id: str, column: str) -> int:
    """Add one to a crl_state counter and return the new value; the row stays locked
    (PostgreSQL) or the database write-locked (SQLite) until the transaction ends."""
    ensure_state(session, ca_id)
    target = getattr(CrlStateRow, column)
    value = session.execute(
        update(CrlStateRow)
        .where(CrlStateRow.ca_id == ca_id)
        .values({column: target + 1})
        .returning(target)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return int(value)

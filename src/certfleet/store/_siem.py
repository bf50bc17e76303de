"""The SIEM outbox's cursor (migration 0028_siem): the audit log is the outbox, and one row
per stream records the last entry delivered, so a collector outage or a restart resumes
after it, in order."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Integer, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store._database import Database
from certfleet.store._sql import dialect_insert
from certfleet.store.models import AuditHeadRow, Base, UtcDateTime

__all__ = ["SiemCursorRow", "SqlSiemCursor"]


class SiemCursorRow(Base):
    __tablename__ = "siem_cursor"

    stream: Mapped[str] = mapped_column(String(100), primary_key=True)
    delivered_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class SqlSiemCursor:
    """Each call is its own short transaction, visible to every node at once."""

    def __init__(self, database: Database, stream: str = "default") -> None:
        self._database = database
        self._stream = stream

    def position(self) -> int:
        """The last audit seq delivered (0: none yet)."""
        with self._database.session(read_only=True) as session:
            found = session.scalar(
                select(SiemCursorRow.delivered_seq).where(SiemCursorRow.stream == self._stream)
            )
        return int(found or 0)

    def advance(self, expected: int, delivered: int, now: dt.datetime) -> bool:
        """Move the cursor from ``expected`` to ``delivered``; False when another sender
        moved it meanwhile (the conditional update matched no row), so it is never set back."""
        with self._database.session() as session:
            values = {"stream": self._stream, "delivered_seq": 0, "updated_at": now}
            session.execute(dialect_insert(session, SiemCursorRow).values(values).on_conflict_do_nothing())
            result = session.execute(
                update(SiemCursorRow)
                .where(SiemCursorRow.stream == self._stream, SiemCursorRow.delivered_seq == expected)
                .values(delivered_seq=delivered, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            return getattr(result, "rowcount", 0) == 1

    def backlog(self) -> int:
        """Audit entries not yet delivered: the head's seq minus the cursor."""
        with self._database.session(read_only=True) as session:
            head = session.scalar(select(AuditHeadRow.seq).where(AuditHeadRow.id == 1)) or 0
            cursor = session.scalar(
                select(SiemCursorRow.delivered_seq).where(SiemCursorRow.stream == self._stream)
            )
        return max(0, int(head) - int(cursor or 0))

"""What the OCSP and CRL endpoints and the CRL builder read, and the short writes that publish
CRLs and OCSP responses (the RevocationStore port of certfleet.revocation._ports)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from certfleet.revocation import (
    CachedResponse,
    CertStatus,
    CrlKind,
    CrlState,
    Revocation,
    RevocationReason,
    RevokedEntry,
    SerialStatus,
    StoredCrl,
)
from certfleet.store._crl_state import ensure_state, increment
from certfleet.store._database import Database, WriterBusy
from certfleet.store._revocation_generation import GenerationReader
from certfleet.store._revocation_models import (
    CrlRow,
    CrlStateRow,
    OcspResponseRow,
    RevocationRow,
)
from certfleet.store._sql import dialect_insert, for_update, raw_utc
from certfleet.store.models import SerialRow

__all__ = ["SqlRevocationStore"]

_STREAM_BATCH = 5000


_aware = raw_utc


def _state(row: Any, ca_id: str) -> CrlState:
    if row is None:
        return CrlState(ca_id)
    return CrlState(ca_id, row.revocation_seq, row.last_number, row.base_number, row.base_seq, row.base_at)


def _crl(row: Any) -> StoredCrl:
    return StoredCrl(
        ca_id=row.ca_id,
        kind=CrlKind(row.kind),
        number=row.number,
        this_update=row.this_update,
        next_update=row.next_update,
        covered_seq=row.covered_seq,
        der=row.der,
        base_number=row.base_number,
    )


def _save_crl(session: Session, crl: StoredCrl, new_base: bool) -> bool:
    stmt = for_update(session, select(CrlRow).where(CrlRow.ca_id == crl.ca_id, CrlRow.kind == crl.kind.value))
    row = session.scalar(stmt)
    if row is not None:
        # Never step back: a CRL built from an older snapshot, or numbered lower, loses.
        if row.number >= crl.number or row.covered_seq > crl.covered_seq:
            return False
        row.number = crl.number
        row.this_update = crl.this_update
        row.next_update = crl.next_update
        row.covered_seq = crl.covered_seq
        row.base_number = crl.base_number
        row.der = crl.der
    else:
        try:
            with session.begin_nested():
                session.add(
                    CrlRow(
                        ca_id=crl.ca_id,
                        kind=crl.kind.value,
                        number=crl.number,
                        this_update=crl.this_update,
                        next_update=crl.next_update,
                        covered_seq=crl.covered_seq,
                        base_number=crl.base_number,
                        der=crl.der,
                    )
                )
                session.flush()
        except SqlIntegrityError:
            return False  # a concurrent builder stored its CRL first
    if new_base:
        ensure_state(session, crl.ca_id)
        session.execute(
            update(CrlStateRow)
            .where(CrlStateRow.ca_id == crl.ca_id)
            .where(CrlStateRow.base_number.is_(None) | (CrlStateRow.base_number < crl.number))
            .values(base_number=crl.number, base_seq=crl.covered_seq, base_at=crl.this_update)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return True


def _save_response(session: Session, response: CachedResponse) -> None:
    values = {
        "ca_id": response.ca_id,
        "serial": response.serial,
        "hash_algorithm": response.hash_algorithm,
        "status": response.status.value,
        "this_update": response.this_update,
        "next_update": response.next_update,
        "der": response.der,
    }
    changing = {k: values[k] for k in ("status", "this_update", "next_update", "der")}
    keys = ["ca_id", "serial", "hash_algorithm"]
    stmt = dialect_insert(session, OcspResponseRow).values(values)
    session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changing))


# A statement of the OCSP path, built once (bound parameters), not per request.
_SERIAL_STATUS = (
    select(
        SerialRow.state,
        SerialRow.reserved_at,
        RevocationRow.revoked_at,
        RevocationRow.reason,
        RevocationRow.expires_at,
        RevocationRow.invalidity_date,
        RevocationRow.seq,
    )
    .select_from(SerialRow)
    .outerjoin(RevocationRow, RevocationRow.serial == SerialRow.serial)
    .where(SerialRow.serial == bindparam("serial"), SerialRow.issuer_ca_id == bindparam("ca_id"))
)


class SqlRevocationStore:
    """Reads for the OCSP and CRL endpoints and the CRL builder, and the short writes that
    publish CRLs and responses.

    Reads use the database's read-only sessions (a deferred BEGIN on SQLite): they never
    queue behind the write lock that revocations and issuance take, nor hold it for the
    seconds a large CRL takes to stream. On PostgreSQL a read that must see one snapshot
    across statements asks for REPEATABLE READ.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._engine: Engine = database.engine.execution_options(certfleet_read_only=True)
        self._generation = GenerationReader(database.engine)
        # Named parameters: sqlite3 spells them :name, psycopg %(name)s.
        ca, serial, alg = (
            (":ca_id", ":serial", ":alg")
            if database.dialect == "sqlite"
            else (
                "%(ca_id)s",
                "%(serial)s",
                "%(alg)s",
            )
        )
        self._cached_sql = (
            "SELECT o.status, o.this_update, o.next_update, o.der,"
            " EXISTS (SELECT 1 FROM revocations r WHERE r.serial = o.serial)"
            f" FROM ocsp_responses o WHERE o.ca_id = {ca} AND o.serial = {serial}"
            f" AND o.hash_algorithm = {alg}"
        )

    def generation(self) -> int:
        return self._generation.current()

    @property
    def generation_is_local(self) -> bool:
        return self._generation.local

    def close(self) -> None:
        self._generation.close()

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def crl(self, ca_id: str, kind: CrlKind) -> tuple[StoredCrl | None, CrlState]:
        with self._snapshot() as conn:
            state = conn.execute(select(CrlStateRow.__table__).where(CrlStateRow.ca_id == ca_id)).first()
            row = conn.execute(
                select(CrlRow.__table__).where(CrlRow.ca_id == ca_id, CrlRow.kind == kind.value)
            ).first()
        return (_crl(row) if row else None), _state(state, ca_id)

    @contextmanager
    def crl_entries(
        self, ca_id: str, *, delta: bool, expires_after: dt.datetime
    ) -> Iterator[tuple[CrlState, Iterator[RevokedEntry]]]:
        with self._snapshot() as conn:
            state = _state(
                conn.execute(select(CrlStateRow.__table__).where(CrlStateRow.ca_id == ca_id)).first(), ca_id
            )
            stmt = (
                select(
                    RevocationRow.serial,
                    RevocationRow.revoked_at,
                    RevocationRow.reason,
                    RevocationRow.invalidity_date,
                )
                .where(
                    RevocationRow.issuer_ca_id == ca_id,
                    RevocationRow.seq > (state.base_seq if delta else 0),
                    RevocationRow.seq <= state.revocation_seq,
                    RevocationRow.expires_at > expires_after,
                )
                .order_by(RevocationRow.seq)
            )
            # yield_per streams (a server-side cursor on PostgreSQL): rows arrive in batches
            # and become small RevokedEntry values, never a million ORM objects at once.
            result = conn.execution_options(yield_per=_STREAM_BATCH).execute(stmt)
            reasons = {r.value: r for r in RevocationReason}
            entries = (
                RevokedEntry(int(serial, 16), revoked_at, reasons[reason], invalidity)
                for serial, revoked_at, reason, invalidity in result
            )
            yield state, entries

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """One read transaction for a single statement (no snapshot across statements)."""
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def cached_response(self, ca_id: str, serial: str, hash_algorithm: str) -> CachedResponse | None:
        # Every OCSP request runs this. Through a SQLAlchemy Connection it costs about 0.2 ms
        # (checkout, BEGIN, events, COMMIT); on the DBAPI connection about 0.025 ms, which is
        # the difference between the database and the HTTP stack being the bottleneck. One
        # SELECT is atomic by itself: SQLite runs it in autocommit mode, and on PostgreSQL the
        # pool rolls the implicit read transaction back when the connection is returned.
        connection: Any = self._database.engine.raw_connection()
        try:
            cursor: Any = connection.cursor()
            try:
                cursor.execute(self._cached_sql, {"ca_id": ca_id, "serial": serial, "alg": hash_algorithm})
                row = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()
        if row is None:
            return None
        status_text, this_update, next_update, der, revoked = row
        status = CertStatus(status_text)
        if status is CertStatus.GOOD and revoked:
            return None  # revoked since it was signed: never serve it again
        return CachedResponse(
            ca_id, serial, hash_algorithm, status, _aware(this_update), _aware(next_update), bytes(der)
        )

    def serial_status(self, ca_id: str, serial: str) -> SerialStatus | None:
        with self._read() as conn:
            row = conn.execute(_SERIAL_STATUS, {"ca_id": ca_id, "serial": serial}).first()
        if row is None:
            return None
        revocation = None
        if row.revoked_at is not None:
            revocation = Revocation(
                serial,
                ca_id,
                row.revoked_at,
                RevocationReason(row.reason),
                row.expires_at,
                row.invalidity_date,
                row.seq,
            )
        return SerialStatus(ca_id, row.state, row.reserved_at, revocation)

    def responses_due(
        self, ca_id: str, produced_before: dt.datetime, limit: int
    ) -> Sequence[tuple[str, str]]:
        stmt = (
            select(OcspResponseRow.serial, OcspResponseRow.hash_algorithm)
            .where(OcspResponseRow.ca_id == ca_id, OcspResponseRow.this_update < produced_before)
            .order_by(OcspResponseRow.this_update)
            .limit(limit)
        )
        with self._snapshot() as conn:
            return [(r.serial, r.hash_algorithm) for r in conn.execute(stmt)]

    def allocate_crl_number(self, ca_id: str) -> int:
        with self._database.session() as session:
            return increment(session, ca_id, "last_number")

    def save_crl(self, crl: StoredCrl, *, new_base: bool = False) -> bool:
        with self._database.session() as session:
            return _save_crl(session, crl, new_base)

    def save_responses(self, responses: Sequence[CachedResponse], *, wait: bool = True) -> bool:
        try:
            with self._database.session(wait=wait) as session:
                for response in responses:
                    _save_response(session, response)
        except WriterBusy:
            return False
        return True

"""The issuance hot path in SQLAlchemy Core: one transaction per batch before signing (policy
version, issuer state, blocked keys, serials) and one after (certificates, names, serial
states, chained audit entries, outbox events). Implements ``services._ports.IssuanceLedger``.

No ORM unit of work and no per-statement SQLAlchemy execution either: each statement is
compiled once per dialect (:class:`DriverStatement`) and run on the transaction's DBAPI cursor;
SQLAlchemy still opens, begins (the SQLite write gate) and commits the transaction. A batch of
N requests costs the same statements as one, plus one INSERT per certificate for its id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ClauseElement,
    Connection,
    Dialect,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.sql.compiler import SQLCompiler

from certfleet.audit import GENESIS_HASH, extend_chain
from certfleet.errors import Conflict
from certfleet.faults import fault_point
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.issuance import ClaimOutcome, ClaimResult, IssuedEntry, SerialClaim
from certfleet.store._certificate_rows import CERTIFICATE_COLUMNS, certificate_row
from certfleet.store._database import Database
from certfleet.store._notify_models import NotificationEventRow
from certfleet.store._policy_models import PolicyVersionRow
from certfleet.store._revocation_models import BlockedKeyRow
from certfleet.store.models import (
    AuditHeadRow,
    AuditRow,
    CaRow,
    CertificateNameRow,
    CertificateRow,
    SerialRow,
)

__all__ = ["DriverStatement", "SqlIssuanceLedger", "compiled_once"]

_T = TypeVar("_T")

_CAS = cast(Table, CaRow.__table__)
_SERIALS = cast(Table, SerialRow.__table__)
_CERTS = cast(Table, CertificateRow.__table__)
_NAMES = cast(Table, CertificateNameRow.__table__)
_AUDIT = cast(Table, AuditRow.__table__)
_HEAD = cast(Table, AuditHeadRow.__table__)
_EVENTS = cast(Table, NotificationEventRow.__table__)
_BLOCKED = cast(Table, BlockedKeyRow.__table__)
_POLICIES = cast(Table, PolicyVersionRow.__table__)

_MARK_ISSUED = (
    update(_SERIALS)
    .where(_SERIALS.c.serial == bindparam("b_serial"))
    .values(state="issued", fingerprint_sha256=bindparam("b_fingerprint"))
)
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("b_seq"), hash=bindparam("b_hash"))
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_SERIAL_COLUMNS = ["serial", "issuer_ca_id", "reserved_at", "state", "fingerprint_sha256"]
_AUDIT_COLUMNS = ["seq", "at", "actor", "action", "subject", "details_json", "prev_hash", "hash"]
_EVENT_COLUMNS = ["kind", "team", "subject", "payload_json", "dedup_key", "occurred_at", "routed_at"]


class DriverStatement:
    """A Core statement compiled once for one dialect and executed on the DBAPI cursor of a
    transaction's connection. SQLAlchemy's own execution costs about 0.15 ms of CPU per
    statement in Python (execution context, cache look-up, result wrapping), more than
    SQLite takes to run these; the hot path runs a dozen per certificate. Parameters go
    through the column types' bind processors (``UtcDateTime``, SQLite's datetime text)
    exactly as SQLAlchemy would send them. Listeners of ``before_cursor_execute`` still see
    each statement (tests count them); with none, as in production, that costs nothing."""

    __slots__ = ("_defaults", "_names", "_positional", "_processors", "sql")

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, columns: Sequence[str] | None = None
    ) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=columns))
        if compiled.insert_prefetch or compiled.update_prefetch:  # a Python-side default
            raise TypeError(f"{statement} needs column defaults computed by SQLAlchemy")
        self.sql: str = compiled.string
        self._positional = bool(dialect.positional)
        if self._positional:
            self._names: tuple[str, ...] = tuple(compiled.positiontup or ())
        else:
            self._names = tuple(n for n in compiled.binds if f"%({n})s" in self.sql)
        binds = {name: compiled.binds[name] for name in self._names}
        self._defaults = {name: b.value for name, b in binds.items() if not b.required}
        self._processors = {
            name: processor
            for name, b in binds.items()
            if (processor := b.type.bind_processor(dialect)) is not None
        }

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        merged = {**self._defaults, **values} if self._defaults else values
        processors = self._processors
        row = [processors[name](merged[name]) if name in processors else merged[name] for name in self._names]
        return tuple(row) if self._positional else dict(zip(self._names, row, strict=True))

    def execute(self, conn: Connection, values: Mapping[str, Any] | None = None) -> Any:
        """Run once; the DBAPI cursor, for ``fetchall`` and ``rowcount``."""
        parameters = self.parameters(values or {})
        return run_on_driver(conn, self.sql, parameters, many=False)

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            run_on_driver(conn, self.sql, [self.parameters(r) for r in rows], many=True)


def run_on_driver(conn: Connection, sql: str, parameters: Any, *, many: bool) -> Any:
    """``sql`` on a new DBAPI cursor of ``conn``'s connection, inside its transaction."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    if conn.dispatch.before_cursor_execute:
        conn.dispatch.before_cursor_execute(conn, cursor, sql, parameters, None, many)
    if many:
        cursor.executemany(sql, parameters)
    else:
        cursor.execute(sql, parameters)
    return cursor


_COMPILED: dict[tuple[Callable[[Dialect], object], str, str], object] = {}


def compiled_once(build: Callable[[Dialect], _T], dialect: Dialect) -> _T:
    """``build(dialect)``, made once per process for each dialect (and driver)."""
    key = (build, dialect.name, dialect.driver)
    built = _COMPILED.get(key)
    if built is None:
        built = _COMPILED[key] = build(dialect)
    return cast(_T, built)


class _Statements:
    """The hot path's statements for one dialect (see ``compiled_once``)."""

    def __init__(self, dialect: Dialect) -> None:
        self.marker = "?" if dialect.paramstyle == "qmark" else "%s"
        self.insert_serials = DriverStatement(insert(_SERIALS), dialect, _SERIAL_COLUMNS)
        self.insert_cert = DriverStatement(
            insert(_CERTS).returning(_CERTS.c.id), dialect, CERTIFICATE_COLUMNS
        )
        self.insert_names = DriverStatement(insert(_NAMES), dialect, ["certificate_id", "name"])
        self.mark_issued = DriverStatement(_MARK_ISSUED, dialect)
        self.insert_audit = DriverStatement(insert(_AUDIT), dialect, _AUDIT_COLUMNS)
        self.move_head = DriverStatement(_MOVE_HEAD, dialect)
        self.read_head = DriverStatement(_LOCK_HEAD if dialect.name == "postgresql" else _READ_HEAD, dialect)
        self.insert_events = DriverStatement(insert(_EVENTS), dialect, _EVENT_COLUMNS)

    def look_up(self, issuers: int, keys: int, serials: int) -> str:
        """The batch's look-up (see ``SqlIssuanceLedger._look_up``) for lists of these sizes:
        an empty list leaves its branch out (``IN ()`` is not SQL)."""
        parts = [f"SELECT 'p' AS tag, CAST(max(version) AS VARCHAR(20)) AS value FROM {_POLICIES.name}"]
        for tag, count, query in (
            ("c", issuers, f"id FROM {_CAS.name} WHERE active = {self.marker} AND id"),
            ("b", keys, f"spki_sha256 FROM {_BLOCKED.name} WHERE spki_sha256"),
            ("s", serials, f"serial FROM {_SERIALS.name} WHERE serial"),
        ):
            if count:
                parts.append(f"SELECT '{tag}', {query} IN ({', '.join([self.marker] * count)})")
        return " UNION ALL ".join(parts)


class SqlIssuanceLedger:
    def __init__(self, database: Database) -> None:
        self._engine = database.engine
        self._postgresql = database.dialect == "postgresql"
        self._writer = database.durable_writer()
        self._sql = compiled_once(_Statements, self._engine.dialect)
        # Raised by the driver itself for the statements run on its cursor.
        self._integrity_errors: tuple[type[BaseException], ...] = (
            SqlIntegrityError,
            self._engine.dialect.loaded_dbapi.IntegrityError,
        )

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite), durable when it returns.

        The rest of certfleet runs SQLite with ``synchronous=NORMAL`` (WAL: a commit reaches
        the disk at the next checkpoint). A reserved serial and an issued certificate must
        survive a power cut the moment the caller goes on to sign or hand the certificate
        out, so these transactions commit with ``synchronous=FULL``; group commit pays that
        fsync once per batch. On a SQLite file they run on the database's kept writer
        connection (store._durable_writer: why). PostgreSQL's default synchronous_commit is
        already durable."""
        if self._writer is not None:  # a SQLite file: one kept connection, synchronous=FULL
            with self._writer.transaction() as conn:
                yield conn
            return
        with self._engine.connect() as conn:
            raw = None if self._postgresql else conn.connection.dbapi_connection
            if raw is not None:
                raw.execute("PRAGMA synchronous=FULL")  # only outside a transaction
            try:
                with conn.begin():
                    yield conn
            finally:
                if raw is not None:
                    raw.execute("PRAGMA synchronous=NORMAL")

    @staticmethod
    def caused_by_items(error: BaseException) -> bool:
        """An OperationalError (SQLAlchemy's, sqlite3's, psycopg's: the database locked by
        another process, unreachable, restarting, out of space) or a lost connection is the
        database's, not an item's."""
        if isinstance(error, DBAPIError):
            if error.connection_invalidated or isinstance(error, OperationalError | InterfaceError):
                return False
            error = error.orig if isinstance(error.orig, BaseException) else error
        return not any(t.__name__ in ("OperationalError", "InterfaceError") for t in type(error).__mro__)

    # -- before signing ------------------------------------------------------------------

    def claim_serials(self, claims: Sequence[SerialClaim]) -> Sequence[ClaimResult]:
        try:
            with self._transaction() as conn:
                return self._claim(conn, claims)
        except self._integrity_errors as exc:
            # A serial inserted by another process between our look-up and our insert (a
            # 128-bit collision racing: practically never). The batch is retried item by
            # item by the caller's group committer; alone, the look-up sees it as taken.
            raise Conflict("a serial of this batch was taken concurrently") from exc

    def _claim(self, conn: Connection, claims: Sequence[SerialClaim]) -> list[ClaimResult]:
        policy_version, active, blocked, taken = self._look_up(conn, claims)
        results: list[ClaimResult] = []
        rows: list[dict[str, Any]] = []
        for claim in claims:
            if claim.issuer_must_be_active and claim.issuer_ca_id not in active:
                outcome = ClaimOutcome.ISSUER_RETIRED
            elif claim.spki_sha256.lower() in blocked:
                outcome = ClaimOutcome.KEY_BLOCKED
            elif claim.policy_checked and claim.policy_version != policy_version:
                outcome = ClaimOutcome.POLICY_CHANGED
            elif claim.serial in taken:
                outcome = ClaimOutcome.TAKEN
            elif claim.annex is not None and (refusal := self._claim_annex(conn, claim)) is not None:
                results.append(ClaimResult(ClaimOutcome.ANNEX_REFUSED, policy_version, refusal))
                continue
            else:
                outcome = ClaimOutcome.RESERVED
                taken.add(claim.serial)
                rows.append(
                    {
                        "serial": claim.serial,
                        "issuer_ca_id": claim.issuer_ca_id,
                        "reserved_at": claim.at,
                        "state": "reserved",
                        "fingerprint_sha256": None,
                    }
                )
            results.append(ClaimResult(outcome, policy_version))
        self._sql.insert_serials.execute_many(conn, rows)
        return results

    def _claim_annex(self, conn: Connection, claim: SerialClaim) -> str | None:
        """Write ``claim.annex`` in the claim's transaction, or say why not (and write
        nothing). A ledger that knows annexes (``SqlScepLedger``) overrides this and
        ``_record``; this one knows none, and an annex it cannot write is a wiring error."""
        raise TypeError(f"{type(self).__name__} cannot write a {type(claim.annex).__name__}")

    def _look_up(
        self, conn: Connection, claims: Sequence[SerialClaim]
    ) -> tuple[int | None, set[str], set[str], set[str]]:
        """One statement for everything the batch must know before it reserves: the policy
        version in force, which of its issuers are still active, which of its keys are
        blocked and which of its serials exist. One round trip on PostgreSQL; the batch is at
        most a few hundred claims, so the IN lists stay far below any parameter limit."""
        issuers = sorted({c.issuer_ca_id for c in claims if c.issuer_must_be_active})
        keys = sorted({c.spki_sha256.lower() for c in claims})
        serials = sorted({c.serial for c in claims})
        sql = self._sql.look_up(len(issuers), len(keys), len(serials))
        parameters = ([True] if issuers else []) + issuers + keys + serials
        found: dict[str, set[str]] = {"c": set(), "b": set(), "s": set()}
        policy_version: int | None = None
        for kind, value in run_on_driver(conn, sql, tuple(parameters), many=False).fetchall():
            if kind == "p":
                policy_version = int(value) if value is not None else None
            else:
                found[kind].add(value)
        return policy_version, found["c"], found["b"], found["s"]

    # -- after signing -------------------------------------------------------------------

    def record_issued(self, entries: Sequence[IssuedEntry]) -> Sequence[CertificateRecord]:
        try:
            with self._transaction() as conn:
                return self._record(conn, entries)
        except self._integrity_errors as exc:
            raise Conflict("a certificate of this batch is already in the inventory") from exc

    def _record(self, conn: Connection, entries: Sequence[IssuedEntry]) -> list[CertificateRecord]:
        sql = self._sql
        # One INSERT per certificate for its id: a multi-row INSERT ... RETURNING does not
        # promise its rows in the order of its VALUES.
        stored = [
            e.record.with_id(int(sql.insert_cert.execute(conn, certificate_row(e.record)).fetchall()[0][0]))
            for e in entries
        ]
        sql.insert_names.execute_many(
            conn,
            [
                {"certificate_id": r.id, "name": name[:255]}
                for r in stored
                for name in dict.fromkeys(n.lower() for n in r.sans)
            ],
        )
        sql.mark_issued.execute_many(
            conn, [{"b_serial": r.serial, "b_fingerprint": r.fingerprint_sha256} for r in stored]
        )
        audit = extend_chain(self._lock_head(conn), [e.audit for e in entries])
        sql.insert_audit.execute_many(
            conn,
            [
                {
                    "seq": a.seq,
                    "at": a.at,
                    "actor": a.actor,
                    "action": a.action,
                    "subject": a.subject,
                    "details_json": json.dumps(a.details, sort_keys=True),
                    "prev_hash": a.prev_hash,
                    "hash": a.hash,
                }
                for a in audit
            ],
        )
        sql.move_head.execute(conn, {"b_seq": audit[-1].seq, "b_hash": audit[-1].hash})
        events = [e.event(r) for e, r in zip(entries, stored, strict=True)]
        sql.insert_events.execute_many(
            conn,
            [
                {
                    "kind": ev.kind.value,
                    "team": ev.team,
                    "subject": ev.subject,
                    "payload_json": json.dumps(ev.payload(), sort_keys=True, separators=(",", ":")),
                    "dedup_key": ev.dedup_key,
                    "occurred_at": ev.occurred_at,
                    "routed_at": None,
                }
                for ev in events
            ],
        )
        if any(e.annex is not None for e in entries):
            self._record_annexes(conn, entries, stored)
        fault_point("issuance.before_commit")  # every row written, none committed
        return stored

    def _record_annexes(
        self, conn: Connection, entries: Sequence[IssuedEntry], stored: Sequence[CertificateRecord]
    ) -> None:
        """Write the entries' annexes in the record transaction (see ``_claim_annex``)."""
        raise TypeError(f"{type(self).__name__} cannot write annexes")

    def _lock_head(self, conn: Connection) -> tuple[int, str]:
        """The chain head, locked until commit: ``FOR UPDATE`` on PostgreSQL; on SQLite the
        transaction's BEGIN IMMEDIATE already excludes every other writer, in any process."""
        rows = self._sql.read_head.execute(conn).fetchall()
        if not rows:
            create = (postgresql.insert if self._postgresql else sqlite.insert)(_HEAD)
            conn.execute(create.values(id=1, seq=0, hash=GENESIS_HASH).on_conflict_do_nothing())
            rows = self._sql.read_head.execute(conn).fetchall()
        seq, hash_ = rows[0]
        return int(seq), str(hash_)

"""The issuance hot path in SQLAlchemy Core: one transaction per batch before signing (policy
version, issuer state, blocked keys, serials) and one after (certificates, names, serial
states, chained audit entries, outbox events). Implements ``services._ports.IssuanceLedger``.

No ORM unit of work here: each statement is compiled once and cached, and a batch of N
requests costs the same number of statements as one (multi-row INSERTs, executemany UPDATEs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import (
    Connection,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from certfleet.audit import GENESIS_HASH, extend_chain
from certfleet.errors import Conflict
from certfleet.faults import fault_point
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.issuance import ClaimOutcome, ClaimResult, IssuedEntry, SerialClaim
from certfleet.store._certificate_rows import certificate_row
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

__all__ = ["SqlIssuanceLedger"]

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
_INSERT_CERTS = insert(_CERTS).returning(_CERTS.c.id, sort_by_parameter_order=True)
# Every statement of the hot path is built once: SQLAlchemy memoizes a statement's cache key
# on the object, so a statement built per call costs its construction and its cache key
# (about 2 ms of CPU per issuance for these, more than executing them on SQLite).
_INSERT_SERIALS = insert(_SERIALS)
_INSERT_NAMES = insert(_NAMES)
_INSERT_AUDIT = insert(_AUDIT)
_INSERT_EVENTS = insert(_EVENTS)
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("b_seq"), hash=bindparam("b_hash"))
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_TAG = literal_column("'p'", String).label("tag")
# One statement for everything a batch must know before it reserves (see ``_look_up``).
_LOOK_UP = union_all(
    select(_TAG, func.max(_POLICIES.c.version).cast(String).label("value")),
    select(literal_column("'c'", String), _CAS.c.id).where(
        _CAS.c.id.in_(bindparam("b_issuers", expanding=True)), _CAS.c.active.is_(True)
    ),
    select(literal_column("'b'", String), _BLOCKED.c.spki_sha256).where(
        _BLOCKED.c.spki_sha256.in_(bindparam("b_keys", expanding=True))
    ),
    select(literal_column("'s'", String), _SERIALS.c.serial).where(
        _SERIALS.c.serial.in_(bindparam("b_serials", expanding=True))
    ),
)


class SqlIssuanceLedger:
    def __init__(self, database: Database) -> None:
        self._engine = database.engine
        self._postgresql = database.dialect == "postgresql"

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite), durable when it returns.

        The rest of certfleet runs SQLite with ``synchronous=NORMAL`` (WAL: a commit reaches
        the disk at the next checkpoint). A reserved serial and an issued certificate must
        survive a power cut the moment the caller goes on to sign or hand the certificate
        out, so these transactions commit with ``synchronous=FULL``; group commit pays that
        fsync once per batch. PostgreSQL's default synchronous_commit is already durable."""
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
        except SqlIntegrityError as exc:
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
        if rows:
            conn.execute(_INSERT_SERIALS, rows)
        return results

    def _claim_annex(self, conn: Connection, claim: SerialClaim) -> str | None:
        """Write ``claim.annex`` in the claim's transaction, or say why not (and write
        nothing). A ledger that knows annexes (``SqlScepLedger``) overrides this and
        ``_record``; this one knows none, and an annex it cannot write is a wiring error."""
        raise TypeError(f"{type(self).__name__} cannot write a {type(claim.annex).__name__}")

    @staticmethod
    def _look_up(
        conn: Connection, claims: Sequence[SerialClaim]
    ) -> tuple[int | None, set[str], set[str], set[str]]:
        """One statement for everything the batch must know before it reserves: the policy
        version in force, which of its issuers are still active, which of its keys are
        blocked and which of its serials exist. One round trip on PostgreSQL; the batch is at
        most a few hundred claims, so the IN lists stay far below any parameter limit."""
        parameters = {
            "b_issuers": sorted({c.issuer_ca_id for c in claims if c.issuer_must_be_active}),
            "b_keys": sorted({c.spki_sha256.lower() for c in claims}),
            "b_serials": sorted({c.serial for c in claims}),
        }
        found: dict[str, set[str]] = {"c": set(), "b": set(), "s": set()}
        policy_version: int | None = None
        for kind, value in conn.execute(_LOOK_UP, parameters):
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
        except SqlIntegrityError as exc:
            raise Conflict("a certificate of this batch is already in the inventory") from exc

    def _record(self, conn: Connection, entries: Sequence[IssuedEntry]) -> list[CertificateRecord]:
        ids = conn.scalars(_INSERT_CERTS, [certificate_row(e.record) for e in entries]).all()
        stored = [e.record.with_id(int(i)) for e, i in zip(entries, ids, strict=True)]
        names = [
            {"certificate_id": r.id, "name": name[:255]}
            for r in stored
            for name in dict.fromkeys(n.lower() for n in r.sans)
        ]
        if names:
            conn.execute(_INSERT_NAMES, names)
        conn.execute(
            _MARK_ISSUED,
            [{"b_serial": r.serial, "b_fingerprint": r.fingerprint_sha256} for r in stored],
        )
        audit = extend_chain(self._lock_head(conn), [e.audit for e in entries])
        conn.execute(
            _INSERT_AUDIT,
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
        conn.execute(_MOVE_HEAD, {"b_seq": audit[-1].seq, "b_hash": audit[-1].hash})
        events = [e.event(r) for e, r in zip(entries, stored, strict=True)]
        conn.execute(
            _INSERT_EVENTS,
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
        stmt = _LOCK_HEAD if self._postgresql else _READ_HEAD
        row = conn.execute(stmt).first()
        if row is None:
            create = (postgresql.insert if self._postgresql else sqlite.insert)(_HEAD)
            conn.execute(create.values(id=1, seq=0, hash=GENESIS_HASH).on_conflict_do_nothing())
            row = conn.execute(stmt).one()
        return int(row.seq), str(row.hash)

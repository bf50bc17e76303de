"""The aggregates ``/metrics`` reports, read at scrape time (no instrumentation in the services
is needed): inventory by status, issuer and team, expiry windows, the earliest expiry per CA,
CRL and OCSP freshness, scans and findings, and audit entries by action, read incrementally."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.sql.elements import SQLCoreOperations

from certfleet.inventory import Status
from certfleet.store._database import Database
from certfleet.store._discovery_models import FindingRow, ScanRunRow
from certfleet.store._revocation_models import CrlRow, OcspResponseRow
from certfleet.store.models import AuditRow, CertificateRow

__all__ = ["InventorySnapshot", "MetricsQueries"]

_ACTIVE = Status.ACTIVE.value


@dataclass(frozen=True)
class InventorySnapshot:
    """One scrape's worth of aggregates (``team`` narrows everything team-owned)."""

    certificates: list[tuple[str, str, str, int]]  # (effective status, issuer, team, count)
    expiring: list[tuple[str, int, int]]  # (team, within days, count)
    earliest_expiry: dict[str, dt.datetime]  # CA id -> earliest notAfter of its active certificates
    crls: list[tuple[str, str, dt.datetime, dt.datetime]]  # (CA id, kind, thisUpdate, nextUpdate)
    oldest_ocsp: dict[str, dt.datetime]  # CA id -> thisUpdate of its oldest cached response
    findings: list[tuple[str, str, int]]  # (severity, code, open count)
    scan_runs: list[tuple[str, str, int]]  # (kind, status, count)
    scan_durations: list[tuple[str, float]]  # (kind, seconds) of finished scans
    algorithms: list[tuple[str, int, str, int]]  # (key algorithm, key size, signature, in-use count)


class MetricsQueries:
    def __init__(self, database: Database) -> None:
        self._database = database

    @staticmethod
    def _team(column: SQLCoreOperations[str | None], team: str | None) -> list[ColumnElement[bool]]:
        return [] if team is None else [column == team]

    def snapshot(
        self, now: dt.datetime, team: str | None, windows: tuple[int, ...], ca_ids: list[str]
    ) -> InventorySnapshot:
        c = CertificateRow
        expired = (c.status == _ACTIVE) & (c.not_after < now)
        status = case((expired, Status.EXPIRED.value), else_=c.status)
        by_labels = (
            select(status, c.issuer, c.team, func.count())
            .where(*self._team(c.team, team))
            .group_by(status, c.issuer, c.team)
        )
        with self._database.session(read_only=True) as s:
            certificates = [(str(st), str(i), t or "", int(n)) for st, i, t, n in s.execute(by_labels).all()]
            expiring: list[tuple[str, int, int]] = []
            for days in windows:
                stmt = (
                    select(c.team, func.count())
                    .where(
                        c.status == _ACTIVE,
                        c.not_after >= now,
                        c.not_after <= now + dt.timedelta(days=days),
                        *self._team(c.team, team),
                    )
                    .group_by(c.team)
                )
                expiring += [(t or "", days, int(n)) for t, n in s.execute(stmt).all()]
            earliest: dict[str, dt.datetime] = {}
            for ca_id in ca_ids:  # one index seek each on (issuer_ca_id, not_after)
                first = s.scalar(
                    select(func.min(c.not_after)).where(
                        c.issuer_ca_id == ca_id,
                        c.status == _ACTIVE,
                        c.not_after >= now,
                        *self._team(c.team, team),
                    )
                )
                if first is not None:
                    earliest[ca_id] = first
            crls = [
                (str(ca), str(kind), this, nxt)
                for ca, kind, this, nxt in s.execute(
                    select(CrlRow.ca_id, CrlRow.kind, CrlRow.this_update, CrlRow.next_update)
                ).all()
            ]
            oldest: dict[str, dt.datetime] = {}
            for ca_id in ca_ids:
                first = s.scalar(
                    select(func.min(OcspResponseRow.this_update)).where(OcspResponseRow.ca_id == ca_id)
                )
                if first is not None:
                    oldest[ca_id] = first
            findings = [
                (str(sev), str(code), int(n))
                for sev, code, n in s.execute(
                    select(FindingRow.severity, FindingRow.code, func.count())
                    .where(FindingRow.resolved_at.is_(None), *self._team(FindingRow.team, team))
                    .group_by(FindingRow.severity, FindingRow.code)
                ).all()
            ]
            runs = [
                (str(kind), str(st), int(n))
                for kind, st, n in s.execute(
                    select(ScanRunRow.kind, ScanRunRow.status, func.count())
                    .where(*self._team(ScanRunRow.team, team))
                    .group_by(ScanRunRow.kind, ScanRunRow.status)
                ).all()
            ]
            # One grouped query: the certfleet_certificates_by_algorithm gauge.
            algorithms = [
                (str(alg), int(size), str(sig), int(n))
                for alg, size, sig, n in s.execute(
                    select(c.key_algorithm, c.key_size, c.signature_algorithm, func.count())
                    .where(c.status == _ACTIVE, c.not_after >= now, *self._team(c.team, team))
                    .group_by(c.key_algorithm, c.key_size, c.signature_algorithm)
                ).all()
            ]
            finished_runs = s.execute(
                select(ScanRunRow.kind, ScanRunRow.started_at, ScanRunRow.finished_at).where(
                    ScanRunRow.started_at.is_not(None),
                    ScanRunRow.finished_at.is_not(None),
                    *self._team(ScanRunRow.team, team),
                )
            ).all()
        durations = [
            (str(kind), max(0.0, (finished - started).total_seconds()))
            for kind, started, finished in finished_runs
            if started is not None and finished is not None
        ]
        return InventorySnapshot(
            certificates, expiring, earliest, crls, oldest, findings, runs, durations, algorithms
        )

    def audit_actions(self, after_seq: int) -> tuple[int, list[tuple[str, int]]]:
        """(the newest seq, entries per action after ``after_seq``): the log is append-only,
        so counters derived from it only ever grow and each scrape reads only what is new."""
        stmt = select(AuditRow.action, func.count(), func.max(AuditRow.seq)).where(AuditRow.seq > after_seq)
        with self._database.session(read_only=True) as s:
            rows = s.execute(stmt.group_by(AuditRow.action)).all()
        last = max((int(m) for _, _, m in rows), default=after_seq)
        return last, [(str(a), int(n)) for a, n, _ in rows]

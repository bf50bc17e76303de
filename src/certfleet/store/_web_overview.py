"""The aggregates of the dashboard's overview, expiry timeline, certificate page and scans
list: counts by status, expiry windows, findings, and what each CA publishes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select

from certfleet.inventory import Status
from certfleet.store._database import Database
from certfleet.store._discovery_models import FindingRow, ScanRunRow
from certfleet.store._revocation_models import CrlRow, OcspResponderRow, OcspResponseRow
from certfleet.store.models import CertificateRow

__all__ = ["OverviewQueries", "RevocationFreshness"]

_ACTIVE = Status.ACTIVE.value


@dataclass(frozen=True)
class RevocationFreshness:
    """What one CA publishes: its CRLs (kind: thisUpdate, nextUpdate, number), the oldest and
    newest pre-signed OCSP response, and when its newest responder certificate expires."""

    crls: dict[str, tuple[dt.datetime, dt.datetime, int]]
    oldest_ocsp: dt.datetime | None
    newest_ocsp: dt.datetime | None
    responder_not_after: dt.datetime | None


class OverviewQueries:
    _database: Database

    @staticmethod
    def _team(team: str | None) -> list[ColumnElement[bool]]:
        return [] if team is None else [CertificateRow.team == team]

    def status_counts(self, now: dt.datetime, team: str | None) -> dict[str, int]:
        """Certificates per effective status (``expired`` derived from the clock)."""
        counts = {s.value: 0 for s in Status}
        by_status = (
            select(CertificateRow.status, func.count())
            .where(*self._team(team))
            .group_by(CertificateRow.status)
        )
        expired = select(func.count()).where(
            CertificateRow.status == _ACTIVE, CertificateRow.not_after < now, *self._team(team)
        )
        with self._database.session(read_only=True) as s:
            for status, count in s.execute(by_status).all():
                counts[str(status)] = counts.get(str(status), 0) + int(count)
            past = int(s.scalar(expired) or 0)
        counts[Status.ACTIVE.value] -= past
        counts[Status.EXPIRED.value] += past
        return counts

    def expiring_counts(self, now: dt.datetime, team: str | None, days: Sequence[int]) -> dict[int, int]:
        """Active certificates whose notAfter falls within each of ``days`` from now."""
        out: dict[int, int] = {}
        with self._database.session(read_only=True) as s:
            for d in days:
                stmt = select(func.count()).where(
                    CertificateRow.status == _ACTIVE,
                    CertificateRow.not_after >= now,
                    CertificateRow.not_after <= now + dt.timedelta(days=d),
                    *self._team(team),
                )
                out[d] = int(s.scalar(stmt) or 0)
        return out

    def count_expiring_between(self, start: dt.datetime, end: dt.datetime, team: str | None) -> int:
        """Certificates of any status whose notAfter is in [start, end)."""
        stmt = select(func.count()).where(
            CertificateRow.not_after >= start, CertificateRow.not_after < end, *self._team(team)
        )
        with self._database.session(read_only=True) as s:
            return int(s.scalar(stmt) or 0)

    def timeline(
        self, start: dt.datetime, weeks: int, now: dt.datetime, team: str | None, group_by: str
    ) -> list[tuple[int, str, int]]:
        """(week index, group, count) of active certificates expiring in each week from
        ``start``; ``group_by`` is ``team`` or ``issuer``. One range query per week: each is a
        slice of the (status, not_after, team) index, cheaper than bucketing every row by a
        date expression (and the same SQL on both databases)."""
        group = CertificateRow.team if group_by == "team" else CertificateRow.issuer
        out: list[tuple[int, str, int]] = []
        with self._database.session(read_only=True) as s:
            for index in range(weeks):
                begin = max(start + dt.timedelta(weeks=index), now)
                end = start + dt.timedelta(weeks=index + 1)
                if end <= begin:
                    continue
                stmt = (
                    select(group, func.count())
                    .where(
                        CertificateRow.status == _ACTIVE,
                        CertificateRow.not_after >= begin,
                        CertificateRow.not_after < end,
                        *self._team(team),
                    )
                    .group_by(group)
                )
                out += [(index, g if isinstance(g, str) else "", int(n)) for g, n in s.execute(stmt).all()]
        return out

    def findings_by_severity(self, team: str | None) -> dict[str, int]:
        stmt = select(FindingRow.severity, func.count()).where(FindingRow.resolved_at.is_(None))
        if team is not None:
            stmt = stmt.where(FindingRow.team == team)
        with self._database.session(read_only=True) as s:
            return {str(sev): int(n) for sev, n in s.execute(stmt.group_by(FindingRow.severity)).all()}

    def revocation_freshness(self, ca_ids: Sequence[str]) -> dict[str, RevocationFreshness]:
        """Per CA; index look-ups only (min and max on (ca_id, this_update)), never a count of
        the cached responses."""
        out: dict[str, RevocationFreshness] = {}
        with self._database.session(read_only=True) as s:
            for ca_id in ca_ids:
                crls = {
                    str(row.kind): (row.this_update, row.next_update, int(row.number))
                    for row in s.execute(
                        select(CrlRow.kind, CrlRow.this_update, CrlRow.next_update, CrlRow.number).where(
                            CrlRow.ca_id == ca_id
                        )
                    ).all()
                }
                responses = OcspResponseRow.this_update
                oldest = s.scalar(select(func.min(responses)).where(OcspResponseRow.ca_id == ca_id))
                newest = s.scalar(select(func.max(responses)).where(OcspResponseRow.ca_id == ca_id))
                responder = s.scalar(
                    select(func.max(OcspResponderRow.not_after)).where(OcspResponderRow.ca_id == ca_id)
                )
                out[ca_id] = RevocationFreshness(crls, oldest, newest, responder)
        return out

    def findings_for_certificate(self, certificate_id: int, fingerprint_sha256: str) -> list[FindingRow]:
        stmt = (
            select(FindingRow)
            .where(
                (FindingRow.certificate_id == certificate_id)
                | (FindingRow.fingerprint_sha256 == fingerprint_sha256)
            )
            .order_by(FindingRow.resolved_at.is_not(None), FindingRow.severity_rank.desc(), FindingRow.id)
            .limit(200)
        )
        with self._database.session(read_only=True) as s:
            return list(s.scalars(stmt))

    # -- scans ---------------------------------------------------------------------------

    def scans(self, team: str | None, limit: int) -> list[ScanRunRow]:
        stmt = select(ScanRunRow)
        if team is not None:
            stmt = stmt.where(ScanRunRow.team == team)
        with self._database.session(read_only=True) as s:
            return list(s.scalars(stmt.order_by(ScanRunRow.created_at.desc()).limit(limit)))

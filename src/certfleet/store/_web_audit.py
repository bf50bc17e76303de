"""The dashboard's reads of the audit log: the log page (with its action, serial and issuer
filters), the entries about one certificate, and a team's recent entries.

An entry is about a certificate when its subject is ``cert:<serial>@<issuer>`` (see
``certfleet.audit.CertificateRef``). Entries written before that form name the serial alone;
they are shown on a certificate only while the inventory holds a single certificate with
that serial (otherwise nobody can say which one they meant), and a refused request's entry
(``certificate.refused``, whose old subject was the names asked for) never is.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, String, func, literal_column, select

from certfleet.audit import CertificateRef, is_legacy_serial_subject
from certfleet.store._database import Database
from certfleet.store._sql import LIKE_ESCAPE, escape_like
from certfleet.store.models import AuditRow, CertificateRow

__all__ = ["AuditQueries", "audit_subject_prefix"]

_REFUSED = "certificate.refused"
_CHUNK = 500  # bound parameters per IN list


def audit_subject_prefix() -> ColumnElement[str]:
    """The expression of the audit subject index (migration 0009_web), spelled with literals
    so both databases match it to the index."""
    return literal_column("substr(audit_log.subject, 1, 200)", String())


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(set(values))
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class AuditQueries:
    _database: Database

    def audit_page(
        self,
        *,
        before_seq: int | None,
        limit: int,
        action: str | None = None,
        serial: str | None = None,
        issuer: str | None = None,
    ) -> list[AuditRow]:
        """Newest first; ``before_seq`` continues after the previous page. ``serial`` and
        ``issuer`` (an RFC 4514 issuer name) keep the entries about such certificates."""
        stmt = select(AuditRow)
        if before_seq is not None:
            stmt = stmt.where(AuditRow.seq < before_seq)
        if action:
            stmt = stmt.where(AuditRow.action == action)
        if serial and issuer:
            subject = CertificateRef(serial, issuer).subject
            stmt = stmt.where(audit_subject_prefix() == subject[:200], AuditRow.subject == subject)
        elif serial:
            prefix = f"cert:{CertificateRef(serial, '-').serial}@"
            stmt = stmt.where(AuditRow.subject.like(f"{escape_like(prefix)}%", escape=LIKE_ESCAPE))
        elif issuer:
            stmt = stmt.where(AuditRow.subject.like(f"cert:%@{escape_like(issuer)}", escape=LIKE_ESCAPE))
        with self._database.session(read_only=True) as s:
            rows = list(s.scalars(stmt.order_by(AuditRow.seq.desc()).limit(limit)))
        if issuer and not serial:  # a name that itself holds "@<issuer>" matched the LIKE
            rows = [r for r in rows if (ref := CertificateRef.parse(r.subject)) and ref.issuer == issuer]
        return rows

    def _unambiguous(self, serials: Iterable[str]) -> dict[str, str | None]:
        """For each serial the inventory holds exactly once: its team."""
        counts: dict[str, list[str | None]] = {}
        with self._database.session(read_only=True) as s:
            for chunk in _chunks(serials):
                stmt = select(CertificateRow.serial, CertificateRow.team).where(
                    CertificateRow.serial.in_(chunk)
                )
                for serial, team in s.execute(stmt):
                    counts.setdefault(serial, []).append(team)
        return {serial: teams[0] for serial, teams in counts.items() if len(teams) == 1}

    def audit_for_certificate(self, serial: str, issuer: str, limit: int) -> list[AuditRow]:
        """The entries about one certificate, newest first."""
        subject = CertificateRef(serial, issuer).subject
        subjects = [subject]
        if serial in self._unambiguous([serial]):
            subjects.append(serial)
        stmt = (
            select(AuditRow)
            .where(
                audit_subject_prefix().in_([s[:200] for s in subjects]),
                AuditRow.subject.in_(subjects),
                (AuditRow.subject == subject) | (AuditRow.action != _REFUSED),
            )
            .order_by(AuditRow.seq.desc())
            .limit(limit)
        )
        with self._database.session(read_only=True) as s:
            return list(s.scalars(stmt))

    def recent_audit(self, team: str | None, limit: int, window: int = 5000) -> list[AuditRow]:
        """The newest entries; for a team, those about its certificates among the last
        ``window`` entries (a bounded look, however long the log grows)."""
        if team is None:
            return self.audit_page(before_seq=None, limit=limit)
        with self._database.session(read_only=True) as s:
            head = int(s.scalar(select(func.max(AuditRow.seq))) or 0)
            recent = s.execute(
                select(AuditRow.seq, AuditRow.action, AuditRow.subject)
                .where(AuditRow.seq > head - window)
                .order_by(AuditRow.seq.desc())
            ).all()
        refs: dict[int, CertificateRef] = {}
        legacy: dict[int, str] = {}
        for seq, action, subject in recent:
            ref = CertificateRef.parse(subject)
            if ref is not None:
                refs[seq] = ref
            elif action != _REFUSED and is_legacy_serial_subject(subject):
                legacy[seq] = subject
        owned: set[tuple[str, str]] = set()
        with self._database.session(read_only=True) as s:
            for chunk in _chunks(r.serial for r in refs.values()):
                stmt = select(CertificateRow.serial, CertificateRow.issuer).where(
                    CertificateRow.serial.in_(chunk), CertificateRow.team == team
                )
                owned.update((serial, issuer) for serial, issuer in s.execute(stmt))
        single = self._unambiguous(legacy.values())
        wanted = [
            seq
            for seq, _, _ in recent
            if ((ref := refs.get(seq)) is not None and (ref.serial, ref.issuer) in owned)
            or (seq in legacy and legacy[seq] in single and single[legacy[seq]] == team)
        ][:limit]
        if not wanted:
            return []
        with self._database.session(read_only=True) as s:
            found = select(AuditRow).where(AuditRow.seq.in_(wanted)).order_by(AuditRow.seq.desc())
            return list(s.scalars(found))

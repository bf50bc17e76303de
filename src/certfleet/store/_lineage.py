"""Certificate lineage: which certificate supersedes which (renewal, rotation, adoption)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from certfleet.errors import Conflict
from certfleet.inventory import CertificateRecord, Status
from certfleet.lifecycle.jobs import MANAGED_SOURCES
from certfleet.lifecycle.lineage import LineageLink
from certfleet.store._lifecycle_models import CertificateLineageRow
from certfleet.store._repositories import _record
from certfleet.store.models import CertificateNameRow, CertificateRow

__all__ = ["SqlLineageRepository"]


class SqlLineageRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, link: LineageLink) -> None:
        try:
            with self._session.begin_nested():
                self._session.add(
                    CertificateLineageRow(
                        certificate_id=link.certificate_id,
                        supersedes_id=link.supersedes_id,
                        kind=link.kind.value,
                        campaign_id=link.campaign_id,
                        actor=link.actor,
                        created_at=link.created_at,
                    )
                )
                self._session.flush()
        except SqlIntegrityError as exc:
            raise Conflict(f"certificate {link.supersedes_id} already has a successor") from exc
        self._session.execute(
            update(CertificateRow)
            .where(CertificateRow.id == link.supersedes_id, CertificateRow.status == Status.ACTIVE.value)
            .values(status=Status.SUPERSEDED.value)
            .execution_options(synchronize_session=False)
        )

    def successor(self, certificate_id: int) -> int | None:
        return self._session.scalar(
            select(CertificateLineageRow.certificate_id).where(
                CertificateLineageRow.supersedes_id == certificate_id
            )
        )

    def predecessor(self, certificate_id: int) -> int | None:
        return self._session.scalar(
            select(CertificateLineageRow.supersedes_id).where(
                CertificateLineageRow.certificate_id == certificate_id
            )
        )

    def certificate(self, certificate_id: int) -> CertificateRecord | None:
        row = self._session.get(CertificateRow, certificate_id, populate_existing=True)
        return _record(row) if row else None

    def unlinked_with_name(self, after_id: int, name: str, limit: int) -> Sequence[CertificateRecord]:
        stmt = (
            select(CertificateRow)
            .where(
                CertificateRow.id.in_(
                    select(CertificateNameRow.certificate_id).where(CertificateNameRow.name == name.lower())
                ),
                CertificateRow.id > after_id,
                CertificateRow.source.in_(MANAGED_SOURCES),
                CertificateRow.issuer_ca_id.is_not(None),
                ~exists().where(CertificateLineageRow.certificate_id == CertificateRow.id),
            )
            .order_by(CertificateRow.id)
            .limit(limit)
        )
        return [_record(r) for r in self._session.scalars(stmt)]

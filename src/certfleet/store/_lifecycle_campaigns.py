"""The campaign repository: campaigns, their items with leases, and what campaigns read from
other areas (certificate locations found by discovery, the ACME server's ARI overrides)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.campaigns import (
    FINAL_STATES,
    Campaign,
    CampaignCounts,
    CampaignItem,
    CampaignStatus,
    ItemState,
    NewItem,
)
from certfleet.lifecycle.jobs import Lease
from certfleet.store._acme_models import AcmeRenewalOverrideRow
from certfleet.store._discovery_models import CertificateLocationRow
from certfleet.store._lifecycle_models import CampaignItemRow, CampaignRow
from certfleet.store._lifecycle_rows import campaign_of, from_acme, item_of, key_hint, managed
from certfleet.store._repositories import _record
from certfleet.store._sql import rowcount, skip_locked
from certfleet.store.models import CaRow, CertificateRow

__all__ = ["SqlCampaignRepository"]

_CLAIMABLE = [ItemState.PENDING.value, ItemState.FAILED.value]

_MILESTONES = {
    "deployed": CampaignItemRow.deployed_at,
    "confirmed": CampaignItemRow.confirmed_at,
    "old_revoked": CampaignItemRow.old_revoked_at,
}


class SqlCampaignRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def candidates(
        self, hints: Mapping[str, str], after_id: int, limit: int
    ) -> Sequence[tuple[CertificateRecord, bool]]:
        stmt = select(CertificateRow, from_acme().label("acme")).where(
            *managed(), CertificateRow.id > after_id
        )
        if "team" in hints:
            stmt = stmt.where(CertificateRow.team == hints["team"])
        if "ca" in hints:
            stmt = stmt.where(CertificateRow.issuer_ca_id == hints["ca"])
        if "key-size" in hints:
            stmt = stmt.where(CertificateRow.key_size == int(hints["key-size"]))
        if "key" in hints and not hints["key"].lower().startswith("ml"):
            # (ML-DSA is stored as ml-dsa-65 or, before it was a key type, its class name:
            # the selection matches both, so no narrowing here.)
            algorithm, size = key_hint(hints["key"])
            stmt = stmt.where(CertificateRow.key_algorithm == algorithm)
            if size is not None:
                stmt = stmt.where(CertificateRow.key_size == size)
        stmt = stmt.order_by(CertificateRow.id).limit(limit)
        return [(_record(row), bool(acme)) for row, acme in self._session.execute(stmt)]

    def add(self, campaign: Campaign, items: Sequence[NewItem], at: dt.datetime) -> None:
        self._session.add(
            CampaignRow(
                id=campaign.id,
                kind=campaign.kind,
                selection=campaign.selection,
                status=campaign.status.value,
                total=campaign.total,
                to_key_type=campaign.to_key_type,
                to_profile=campaign.to_profile,
                to_ca_id=campaign.to_ca_id,
                revoke_after_seconds=(
                    int(campaign.revoke_old_after.total_seconds())
                    if campaign.revoke_old_after is not None
                    else None
                ),
                revoke_reason=campaign.revoke_reason,
                generate_dir=campaign.generate_dir,
                deadline_at=campaign.deadline_at,
                actor=campaign.actor,
                created_at=campaign.created_at,
                updated_at=at,
            )
        )
        self._session.flush()
        rows = [
            {
                "campaign_id": campaign.id,
                "certificate_id": i.certificate_id,
                "serial": i.serial,
                "action": i.action.value,
                "state": i.state.value,
                "due_at": at,
                "failures": 0,
                "holder": i.holder,
            }
            for i in items
        ]
        for start in range(0, len(rows), 5000):
            self._session.execute(insert(CampaignItemRow), rows[start : start + 5000])

    def get(self, campaign_id: str) -> Campaign | None:
        row = self._session.get(CampaignRow, campaign_id, populate_existing=True)
        return campaign_of(row) if row else None

    def list(self, limit: int) -> Sequence[Campaign]:
        stmt = select(CampaignRow).order_by(CampaignRow.created_at.desc(), CampaignRow.id).limit(limit)
        return [campaign_of(r) for r in self._session.scalars(stmt)]

    def open(self) -> Sequence[Campaign]:
        stmt = (
            select(CampaignRow)
            .where(CampaignRow.status != CampaignStatus.COMPLETED.value)
            .order_by(CampaignRow.created_at)
        )
        return [campaign_of(r) for r in self._session.scalars(stmt)]

    def set_status(self, campaign_id: str, status: CampaignStatus, at: dt.datetime) -> None:
        finished = at if status is CampaignStatus.COMPLETED else None
        self._session.execute(
            update(CampaignRow)
            .where(CampaignRow.id == campaign_id)
            .values(status=status.value, updated_at=at, finished_at=finished)
        )

    def counts(self, campaign_id: str) -> CampaignCounts:
        mine = CampaignItemRow.campaign_id == campaign_id
        states = self._session.execute(
            select(CampaignItemRow.state, func.count()).where(mine).group_by(CampaignItemRow.state)
        )
        marks = self._session.execute(
            select(*(func.count(column) for column in _MILESTONES.values())).where(mine)
        ).one()
        by_state = {state: int(n) for state, n in states}
        return CampaignCounts(by_state, int(marks[0]), int(marks[1]), int(marks[2]))

    def claim(self, campaign_id: str, now: dt.datetime, lease: Lease, limit: int) -> Sequence[CampaignItem]:
        due = (
            CampaignItemRow.campaign_id == campaign_id,
            CampaignItemRow.state.in_(_CLAIMABLE),
            CampaignItemRow.due_at <= now,
        )
        pick = (
            select(CampaignItemRow.certificate_id)
            .where(*due)
            .order_by(CampaignItemRow.due_at, CampaignItemRow.certificate_id)
            .limit(limit)
        )
        ids = list(self._session.scalars(skip_locked(self._session, pick)))
        if not ids:
            return []
        self._session.execute(
            update(CampaignItemRow)
            .where(CampaignItemRow.certificate_id.in_(ids), *due)
            .values(lease_token=lease.token, due_at=lease.until)
            .execution_options(synchronize_session=False)
        )
        return self._items(
            CampaignItemRow.campaign_id == campaign_id,
            CampaignItemRow.certificate_id.in_(ids),
            CampaignItemRow.lease_token == lease.token,
        )

    def _items(self, *where: ColumnElement[bool], limit: int | None = None) -> Sequence[CampaignItem]:
        successor = aliased(CertificateRow)
        stmt = (
            select(CampaignItemRow, successor.serial)
            .outerjoin(successor, successor.id == CampaignItemRow.successor_id)
            .where(*where)
            .order_by(CampaignItemRow.certificate_id)
            .execution_options(populate_existing=True)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        return [item_of(row, serial) for row, serial in self._session.execute(stmt)]

    def item(self, campaign_id: str, serial: str) -> CampaignItem | None:
        found = self._items(CampaignItemRow.campaign_id == campaign_id, CampaignItemRow.serial == serial)
        return found[0] if found else None

    def items(
        self, campaign_id: str, after_id: int, limit: int, state: ItemState | None = None
    ) -> Sequence[CampaignItem]:
        where = [CampaignItemRow.campaign_id == campaign_id, CampaignItemRow.certificate_id > after_id]
        if state is not None:
            where.append(CampaignItemRow.state == state.value)
        return self._items(*where, limit=limit)

    def following(self, campaign_id: str, after_id: int, limit: int) -> Sequence[CampaignItem]:
        reissued = CampaignItemRow.state == ItemState.REISSUED.value
        unfinished = or_(CampaignItemRow.confirmed_at.is_(None), CampaignItemRow.old_revoked_at.is_(None))
        return self._items(
            CampaignItemRow.campaign_id == campaign_id,
            CampaignItemRow.certificate_id > after_id,
            or_(CampaignItemRow.state == ItemState.AWAITING_CLIENT.value, reissued & unfinished),
            limit=limit,
        )

    def unfinished(self, campaign_id: str, after_id: int, limit: int) -> Sequence[CampaignItem]:
        final = CampaignItemRow.state.in_([s.value for s in FINAL_STATES])
        unrevoked = (CampaignItemRow.state == ItemState.REISSUED.value) & CampaignItemRow.old_revoked_at.is_(
            None
        )
        return self._items(
            CampaignItemRow.campaign_id == campaign_id,
            CampaignItemRow.certificate_id > after_id,
            or_(~final, unrevoked),
            limit=limit,
        )

    def overdue(self, campaign_id: str, certificate_id: int, at: dt.datetime, reason: str) -> bool:
        return self._update(
            campaign_id,
            certificate_id,
            None,
            state=ItemState.OVERDUE_REVOKED.value,
            old_revoked_at=at,
            last_error=reason[:2000],
        )

    def mark_successor(self, successor_id: int, milestone: str, at: dt.datetime) -> int:
        column = _MILESTONES[milestone]
        open_campaigns = select(CampaignRow.id).where(CampaignRow.status != CampaignStatus.COMPLETED.value)
        result = self._session.execute(
            update(CampaignItemRow)
            .where(
                CampaignItemRow.successor_id == successor_id,
                CampaignItemRow.campaign_id.in_(open_campaigns),
                column.is_(None),
            )
            .values({column.key: at})
            .execution_options(synchronize_session=False)
        )
        return rowcount(result)

    def awaiting_client(self, holder: str, limit: int) -> Sequence[CampaignItem]:
        open_campaigns = select(CampaignRow.id).where(CampaignRow.status != CampaignStatus.COMPLETED.value)
        return self._items(
            CampaignItemRow.holder == holder,
            CampaignItemRow.state == ItemState.AWAITING_CLIENT.value,
            CampaignItemRow.campaign_id.in_(open_campaigns),
            limit=limit,
        )

    def _update(self, campaign_id: str, certificate_id: int, token: str | None, **values: Any) -> bool:
        where = [CampaignItemRow.campaign_id == campaign_id, CampaignItemRow.certificate_id == certificate_id]
        if token is not None:
            where.append(CampaignItemRow.lease_token == token)
        where.append(CampaignItemRow.state != ItemState.REISSUED.value)
        result = self._session.execute(
            update(CampaignItemRow)
            .where(*where)
            .values(lease_token=None, **values)
            .execution_options(synchronize_session=False)
        )
        return getattr(result, "rowcount", 0) == 1

    def reissued(
        self, campaign_id: str, certificate_id: int, token: str | None, successor_id: int, at: dt.datetime
    ) -> bool:
        return self._update(
            campaign_id,
            certificate_id,
            token,
            state=ItemState.REISSUED.value,
            successor_id=successor_id,
            reissued_at=at,
            last_error=None,
        )

    def failed(
        self, campaign_id: str, certificate_id: int, token: str, reason: str, due_at: dt.datetime
    ) -> bool:
        return self._update(
            campaign_id,
            certificate_id,
            token,
            state=ItemState.FAILED.value,
            failures=CampaignItemRow.failures + 1,
            last_error=reason[:2000],
            due_at=due_at,
        )

    def waiting(
        self, campaign_id: str, certificate_id: int, token: str, state: ItemState, reason: str | None = None
    ) -> bool:
        return self._update(campaign_id, certificate_id, token, state=state.value, last_error=reason)

    def note(self, campaign_id: str, certificate_id: int, reason: str) -> None:
        self._session.execute(
            update(CampaignItemRow)
            .where(
                CampaignItemRow.campaign_id == campaign_id, CampaignItemRow.certificate_id == certificate_id
            )
            .values(last_error=reason[:2000])
        )

    def mark(self, campaign_id: str, certificate_id: int, milestone: str, at: dt.datetime) -> None:
        column = _MILESTONES[milestone]
        self._session.execute(
            update(CampaignItemRow)
            .where(
                CampaignItemRow.campaign_id == campaign_id,
                CampaignItemRow.certificate_id == certificate_id,
                column.is_(None),
            )
            .values({column.key: at})
            .execution_options(synchronize_session=False)
        )

    def set_ari_window(
        self, serial: str, start: dt.datetime, end: dt.datetime, at: dt.datetime, actor: str
    ) -> None:
        row = self._session.get(AcmeRenewalOverrideRow, serial)
        if row is None:
            self._session.add(
                AcmeRenewalOverrideRow(
                    serial=serial, window_start=start, window_end=end, set_at=at, actor=actor
                )
            )
        else:
            row.window_start, row.window_end, row.set_at, row.actor = start, end, at, actor
        self._session.flush()

    def places(self, certificate_ids: Sequence[int]) -> Mapping[int, set[tuple[str, str, str, bool]]]:
        found: dict[int, set[tuple[str, str, str, bool]]] = {i: set() for i in certificate_ids}
        if not certificate_ids:
            return found
        stmt = select(
            CertificateLocationRow.certificate_id,
            CertificateLocationRow.kind,
            CertificateLocationRow.location,
            CertificateLocationRow.sni,
            CertificateLocationRow.gone_at,
        ).where(CertificateLocationRow.certificate_id.in_(list(certificate_ids)), CertificateLocationRow.leaf)
        for cid, kind, location, sni, gone_at in self._session.execute(stmt):
            found[cid].add((kind, location, sni or "", gone_at is None))
        return found

    def retire_ca(self, ca_id: str) -> None:
        self._session.execute(update(CaRow).where(CaRow.id == ca_id).values(active=False))

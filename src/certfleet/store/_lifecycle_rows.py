"""Lifecycle rows read as values (campaigns, campaign items) and the one definition of the
certificates the lifecycle manages, shared by renewal planning and campaigns."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, exists

from certfleet.inventory import Status
from certfleet.lifecycle.campaigns import (
    Campaign,
    CampaignItem,
    CampaignStatus,
    ItemAction,
    ItemState,
)
from certfleet.lifecycle.jobs import MANAGED_SOURCES
from certfleet.store._acme_models import AcmeOrderRow
from certfleet.store._lifecycle_models import CampaignItemRow, CampaignRow
from certfleet.store.models import CertificateRow

__all__ = ["campaign_of", "from_acme", "item_of", "key_hint", "managed"]


def managed() -> list[ColumnElement[bool]]:
    return [
        CertificateRow.status == Status.ACTIVE.value,
        CertificateRow.source.in_(MANAGED_SOURCES),
        CertificateRow.issuer_ca_id.is_not(None),
    ]


def from_acme() -> ColumnElement[bool]:
    return exists().where(AcmeOrderRow.certificate_serial == CertificateRow.serial)


def key_hint(key: str) -> tuple[str, int | None]:
    """``rsa-2048`` -> (rsa, 2048), ``ec-p256`` -> (ec, 256), ``rsa`` -> (rsa, None)."""
    key = key.lower()
    if key.startswith("ec-p") and key[4:].isdigit():
        return "ec", int(key[4:])
    algorithm, _, size = key.partition("-")
    return algorithm, int(size) if size.isdigit() else None


def campaign_of(row: CampaignRow) -> Campaign:
    return Campaign(
        id=row.id,
        kind=row.kind,
        selection=row.selection,
        created_at=row.created_at,
        actor=row.actor,
        status=CampaignStatus(row.status),
        total=row.total,
        to_key_type=row.to_key_type,
        to_profile=row.to_profile,
        to_ca_id=row.to_ca_id,
        revoke_old_after=(
            dt.timedelta(seconds=row.revoke_after_seconds) if row.revoke_after_seconds is not None else None
        ),
        revoke_reason=row.revoke_reason,
        generate_dir=row.generate_dir,
        finished_at=row.finished_at,
        deadline_at=row.deadline_at,
    )


def item_of(row: CampaignItemRow, successor_serial: str | None) -> CampaignItem:
    return CampaignItem(
        campaign_id=row.campaign_id,
        certificate_id=row.certificate_id,
        serial=row.serial,
        action=ItemAction(row.action),
        state=ItemState(row.state),
        due_at=row.due_at,
        successor_id=row.successor_id,
        successor_serial=successor_serial,
        reissued_at=row.reissued_at,
        deployed_at=row.deployed_at,
        confirmed_at=row.confirmed_at,
        old_revoked_at=row.old_revoked_at,
        failures=row.failures,
        last_error=row.last_error,
        holder=row.holder,
    )

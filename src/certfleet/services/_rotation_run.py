"""Working a rotation campaign: lease its pending items, reissue each through the renewal
path (adopting a replacement an earlier, killed run already issued), park the items that
wait for a key holder or a client, and record failures for a retry with backoff."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.clock import Clock
from certfleet.errors import CertfleetError, NotFound
from certfleet.inventory import CertificateRecord, Status
from certfleet.lifecycle.campaigns import (
    Campaign,
    CampaignItem,
    CampaignReport,
    ItemAction,
    ItemState,
    key_label,
)
from certfleet.lifecycle.jobs import Lease
from certfleet.lifecycle.lineage import LineageKind
from certfleet.lifecycle.planning import backoff
from certfleet.lifecycle.settings import LifecycleSettings
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services._rotation_keys import generated_key, write_files
from certfleet.services._rotation_milestones import Milestones
from certfleet.services.renewal import LeaseLost, RenewalService

__all__ = ["CampaignRunner", "Progress", "get_campaign", "latest_chain"]

Progress = Callable[[CampaignItem, ItemState], None]
_POLL_SECONDS = 0.5


def get_campaign(uow_factory: UnitOfWorkFactory, campaign_id: str) -> Campaign:
    with uow_factory(read_only=True) as uow:
        campaign = uow.lifecycle.campaigns.get(campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    return campaign


def latest_chain(
    uow_factory: UnitOfWorkFactory, renewal: RenewalService, item: CampaignItem
) -> list[CertificateRecord]:
    """The item's certificate and its replacements so far, oldest first (empty when gone)."""
    with uow_factory(read_only=True) as uow:
        record = uow.lifecycle.lineage.certificate(item.certificate_id)
    if record is None:
        return []
    return renewal.lineage(record)


class CampaignRunner:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        renewal: RenewalService,
        current_ca: Callable[[], str],
        milestones: Milestones,
        clock: Clock,
        settings: LifecycleSettings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._uow = uow
        self._renewal = renewal
        self._current_ca = current_ca
        self._milestones = milestones
        self._clock = clock
        self._settings = settings
        self._sleep = sleep

    def _get(self, campaign_id: str) -> Campaign:
        return get_campaign(self._uow, campaign_id)

    def run_to_end(self, campaign_id: str, *, progress: Progress | None = None) -> CampaignReport:
        """Work the campaign, then wait out items still pending: they are leased by another
        worker, or by a run that was killed, and once that lease ends the other worker has
        finished them or they become ours (at most one lease plus a few seconds)."""
        report = self.run(campaign_id, progress=progress)
        deadline = time.monotonic() + self._settings.lease_seconds + 5
        while report.counts.of(ItemState.PENDING) and time.monotonic() < deadline:
            self._sleep(_POLL_SECONDS)
            report = self.run(campaign_id, progress=progress)
        return report

    def run(
        self,
        campaign_id: str,
        *,
        progress: Progress | None = None,
        generate: bool = True,
    ) -> CampaignReport:
        """Work the campaign's pending items until none is due, then observe milestones.
        ``generate`` false leaves ``--generate-keys`` items to the CLI that asked for them
        (their keys go to a directory on that machine)."""
        campaign = self._get(campaign_id)
        if campaign.generate_dir is None or generate:
            while True:
                now = self._clock.now()
                lease = Lease(self._renewal.worker, secrets.token_hex(16), now + self._settings.lease)
                with self._uow() as uow:
                    items = uow.lifecycle.campaigns.claim(campaign.id, now, lease, self._settings.batch_size)
                if not items:
                    break
                target_ca = self._current_ca()
                for item in items:
                    state = self._process(campaign, item, lease, target_ca)
                    if progress is not None and state is not None:
                        progress(item, state)
        return self._milestones.follow(campaign)

    def _process(
        self, campaign: Campaign, item: CampaignItem, lease: Lease, target_ca: str
    ) -> ItemState | None:
        try:
            return self._reissue(campaign, item, lease, target_ca)
        except LeaseLost:
            return None
        except Exception as exc:  # noqa: BLE001 - the outermost item handler: record, go on
            reason = exc.detail if isinstance(exc, CertfleetError) else f"{type(exc).__name__}: {exc}"
            due = self._clock.now() + backoff(item.failures + 1)
            with self._uow() as uow:
                uow.lifecycle.campaigns.failed(campaign.id, item.certificate_id, lease.token, reason, due)
            return ItemState.FAILED

    def _satisfies(self, record: CertificateRecord, campaign: Campaign, target_ca: str) -> bool:
        if campaign.to_key_type is not None and key_label(record) != campaign.to_key_type:
            return False
        if campaign.to_profile is not None:  # the profile chooses the CA (its hierarchy)
            return record.profile == campaign.to_profile and record.first_seen >= campaign.created_at
        return (
            record.issuer_ca_id == (campaign.to_ca_id or target_ca)
            and record.first_seen >= campaign.created_at
        )

    def _reissue(self, campaign: Campaign, item: CampaignItem, lease: Lease, target_ca: str) -> ItemState:
        chain = latest_chain(self._uow, self._renewal, item)
        now = self._clock.now()
        if not chain:
            return self._park(
                campaign, item, lease, ItemState.SKIPPED, "certificate no longer in the inventory"
            )
        latest = chain[-1]
        if len(chain) > 1 and self._satisfies(latest, campaign, target_ca):
            with self._uow() as uow:  # replaced meanwhile (renewal, an earlier run): adopt it
                uow.lifecycle.campaigns.reissued(
                    campaign.id, item.certificate_id, lease.token, latest.id or 0, now
                )
            return ItemState.REISSUED
        if latest.status is Status.REVOKED:
            return self._park(
                campaign, item, lease, ItemState.SKIPPED, f"certificate {latest.serial} is revoked"
            )
        key: CertificateIssuerPrivateKeyTypes | None = None
        if item.action is ItemAction.GENERATE:
            key = generated_key(campaign, item)
        elif item.action is not ItemAction.REISSUE:
            return self._park(campaign, item, lease, item.state, None)

        def claim(uow: UnitOfWork, new: CertificateRecord) -> bool:
            assert new.id is not None
            return uow.lifecycle.campaigns.reissued(
                campaign.id, item.certificate_id, lease.token, new.id, now
            )

        new = self._renewal.reissue(
            latest,
            kind=LineageKind.REKEY if key is not None else LineageKind.ROTATION,
            actor=f"campaign:{campaign.id}",
            since=campaign.created_at,
            claim=claim,
            expected_ca=None if campaign.to_profile else target_ca,
            public_key=key.public_key() if key is not None else None,
            campaign_id=campaign.id,
            profile=campaign.to_profile,
        )
        if key is not None:
            write_files(campaign, item, new, self._renewal.issuing_chain(new))
        return ItemState.REISSUED

    def _park(
        self, campaign: Campaign, item: CampaignItem, lease: Lease, state: ItemState, reason: str | None
    ) -> ItemState:
        with self._uow() as uow:
            uow.lifecycle.campaigns.waiting(campaign.id, item.certificate_id, lease.token, state, reason)
        return state

"""What a campaign observes after reissuing: clients' replacements (ACME, agents), deployments
and confirmations that scans record as certificate locations, and revocations falling due."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

from certfleet.clock import Clock
from certfleet.errors import CertfleetError, Conflict
from certfleet.inventory import CertificateRecord, Status
from certfleet.lifecycle.campaigns import Campaign, CampaignCounts, CampaignItem, ItemState
from certfleet.lifecycle.lineage import LineageKind, LineageLink
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services.renewal import RenewalService, Revoker

__all__ = ["Milestones", "progress_steps"]

_PAGE = 1000
_PERCENTS = (25, 50, 75, 100)


def progress_steps(counts: CampaignCounts) -> dict[str, dict[str, Any]]:
    """The milestones a campaign has reached, step name -> details: each quarter of the items
    to replace (skipped ones excepted) reissued, deployed, confirmed and old-revoked. A step
    is named by its percentage so it is announced once however often progress is observed;
    quarters that fall on the same count (small campaigns) keep only the highest."""
    due = counts.total - counts.of(ItemState.SKIPPED)
    if due <= 0:
        return {}
    done = {
        "reissued": counts.of(ItemState.REISSUED),
        "deployed": counts.deployed,
        "confirmed": counts.confirmed,
        "old_revoked": counts.old_revoked,
    }
    steps: dict[str, dict[str, Any]] = {}
    for name, value in done.items():
        needed = {percent: math.ceil(due * percent / 100) for percent in _PERCENTS}
        for percent, threshold in needed.items():
            if value >= threshold and (percent == 100 or needed[percent + 25] != threshold):
                summary = f"{threshold} of {due} {name.replace('_', ' ')}"
                steps[f"{name}:{percent}%"] = {"milestone": name, "percent": percent, "summary": summary}
    return steps


class Milestones:
    def __init__(
        self, uow: UnitOfWorkFactory, renewal: RenewalService, revoke: Revoker, clock: Clock
    ) -> None:
        self._uow = uow
        self._renewal = renewal
        self._revoke = revoke
        self._clock = clock

    def _lineage(self, item: CampaignItem) -> list[CertificateRecord]:
        with self._uow(read_only=True) as uow:
            record = uow.lifecycle.lineage.certificate(item.certificate_id)
        return self._renewal.lineage(record) if record is not None else []

    def observe(self, campaign: Campaign) -> None:
        """One pass over the campaign's items that still have milestones ahead."""
        after = 0
        while True:
            with self._uow(read_only=True) as uow:
                page = uow.lifecycle.campaigns.following(campaign.id, after, _PAGE)
                ids = [i.certificate_id for i in page] + [i.successor_id for i in page if i.successor_id]
                places = uow.lifecycle.campaigns.places(ids)
            for item in page:
                self._follow(campaign, item, places)
            if len(page) < _PAGE:
                return
            after = page[-1].certificate_id

    def _follow(
        self, campaign: Campaign, item: CampaignItem, places: Mapping[int, set[tuple[str, str, str, bool]]]
    ) -> None:
        now = self._clock.now()
        if item.state is ItemState.AWAITING_CLIENT:
            with self._uow(read_only=True) as uow:  # most rounds find nothing: no write lock
                found = self._client_renewal(uow, campaign, item)
            if found is not None:
                successor, link = found
                with contextlib.suppress(Conflict), self._uow() as uow:  # Conflict: recorded meanwhile
                    if link is not None:
                        uow.lifecycle.lineage.add(link)
                    uow.lifecycle.campaigns.reissued(campaign.id, item.certificate_id, None, successor, now)
            return
        if item.successor_id is None or item.reissued_at is None:
            return
        present = {(k, loc, sni) for k, loc, sni, here in places.get(item.successor_id, set()) if here}
        old = {(k, loc, sni) for k, loc, sni, _ in places.get(item.certificate_id, set())}
        marks: list[str] = []
        if present and item.deployed_at is None:
            marks.append("deployed")
        if old and old <= present and item.confirmed_at is None:
            marks.append("confirmed")  # a scan saw the new certificate everywhere the old one was
        due = campaign.revoke_old_after
        revoke_due = due is not None and item.old_revoked_at is None and item.reissued_at + due <= now
        if revoke_due and self._revoke_old(campaign, item):
            marks.append("old_revoked")
        if marks:
            with self._uow() as uow:
                for milestone in marks:
                    uow.lifecycle.campaigns.mark(campaign.id, item.certificate_id, milestone, now)

    def _revoke_old(self, campaign: Campaign, item: CampaignItem) -> bool:
        """Revoke every certificate the successor replaced (the item's and any renewal of it
        in between). Already revoked counts as done; another refusal is kept on the item."""
        for record in self._lineage(item):
            if record.id == item.successor_id:
                break
            if record.status is Status.REVOKED:
                continue
            try:
                self._revoke(record.serial, campaign.revoke_reason, actor=f"campaign:{campaign.id}")
            except Conflict:
                continue  # revoked meanwhile
            except CertfleetError as exc:
                with self._uow() as uow:
                    uow.lifecycle.campaigns.note(
                        campaign.id, item.certificate_id, f"revocation: {exc.detail}"
                    )
                return False
        return True

    def _client_renewal(
        self, uow: UnitOfWork, campaign: Campaign, item: CampaignItem
    ) -> tuple[int, LineageLink | None] | None:
        """An ACME client's or agent's replacement: same names and team, issued by certfleet
        since the campaign began, replacing nothing yet; with the lineage link to record
        (None when the lineage is already recorded)."""
        old = uow.lifecycle.lineage.certificate(item.certificate_id)
        if old is None or not old.sans or old.id is None:
            return None
        successor = uow.lifecycle.lineage.successor(old.id)
        if successor is not None:
            return successor, None
        for candidate in uow.lifecycle.lineage.unlinked_with_name(old.id, old.sans[0], 50):
            if (
                candidate.id is not None
                and candidate.first_seen >= campaign.created_at
                and set(candidate.sans) == set(old.sans)
                and candidate.team == old.team
            ):
                now = self._clock.now()
                actor = f"campaign:{campaign.id}"
                return candidate.id, LineageLink(
                    candidate.id, old.id, LineageKind.ACME, now, actor, campaign.id
                )
        return None

"""What a campaign observes after reissuing: clients' replacements (ACME, agents), deployments
and confirmations that scans and agents record as certificate locations, revocations falling
due, and its deadline; and what it announces (``rotation-progress``, ``rotation-overdue``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from certfleet.clock import Clock, iso
from certfleet.errors import CertfleetError, Conflict, InvalidInput
from certfleet.inventory import CertificateRecord, Status
from certfleet.lifecycle.campaigns import (
    Campaign,
    CampaignCounts,
    CampaignItem,
    CampaignReport,
    ItemState,
    key_label,
)
from certfleet.lifecycle.jobs import AGENT_IDENTITY_TAG
from certfleet.lifecycle.lineage import LineageKind, LineageLink
from certfleet.lifecycle.selection import Selection
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services.notifications import Event, EventKind, certificate_event, emit
from certfleet.services.renewal import RenewalService, Revoker

__all__ = ["Milestones", "announce", "progress_steps"]

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


def _key(campaign: Campaign, step: str) -> str:
    return f"campaign:{campaign.id}:{step}"


def announce(
    uow: UnitOfWork,
    campaign: Campaign,
    what: str,
    counts: CampaignCounts,
    now: dt.datetime,
    milestone: Mapping[str, Any] | None = None,
) -> None:
    """A ``rotation-progress`` event in the caller's transaction, once per step."""
    try:  # routed to the team the campaign selected, else to channels of no team
        team = Selection.parse(campaign.selection).single("team")
    except InvalidInput:
        team = None
    details = {"campaign": campaign.to_dict(), "progress": counts.to_dict(), "step": what}
    emit(
        uow,
        Event(
            kind=EventKind.ROTATION_PROGRESS,
            subject=campaign.id,
            occurred_at=now,
            team=team,
            details={**details, **(milestone or {})},
            dedup_key=_key(campaign, what),
        ),
    )


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

    def follow(self, campaign: Campaign) -> CampaignReport:
        """Observe, enforce the deadline, announce the steps reached, update the status."""
        self.observe(campaign)
        if campaign.deadline_at is not None and self._clock.now() >= campaign.deadline_at:
            self.overdue(campaign)
        now = self._clock.now()
        with self._uow() as uow:
            counts = uow.lifecycle.campaigns.counts(campaign.id)
            # Milestones are derived from the committed item states, so one missed by a crash
            # is announced by the next observation; the dedup key makes it once.
            steps = progress_steps(counts)
            taken = uow.outbox.existing_keys([_key(campaign, step) for step in steps])
            for step, milestone in steps.items():
                if _key(campaign, step) not in taken:
                    announce(uow, campaign, step, counts, now, milestone)
            status = counts.status(campaign.revokes)
            if status is not campaign.status:
                uow.lifecycle.campaigns.set_status(campaign.id, status, now)
                campaign = replace(campaign, status=status)
                announce(uow, campaign, status.value, counts, now)
        return CampaignReport(campaign, counts)

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
            if not self.link(campaign, item):
                return
            # Linked now: follow its replacement in this same pass (a holder's failed
            # deployment report is noted by the pass that links it, not one round later).
            with self._uow(read_only=True) as uow:
                linked = uow.lifecycle.campaigns.following(campaign.id, item.certificate_id - 1, 1)
                if not linked or linked[0].certificate_id != item.certificate_id:
                    return
                item = linked[0]
                places = uow.lifecycle.campaigns.places(
                    [item.certificate_id] + ([item.successor_id] if item.successor_id else [])
                )
        if item.successor_id is None or item.reissued_at is None:
            return
        if item.holder is not None and item.deployed_at is None:
            self._note_failed_deployment(campaign, item)
        present = {(k, loc, sni) for k, loc, sni, here in places.get(item.successor_id, set()) if here}
        old = {(k, loc, sni) for k, loc, sni, _ in places.get(item.certificate_id, set())}
        marks: list[str] = []
        if present and item.deployed_at is None:
            marks.append("deployed")
        if old and old <= present and item.confirmed_at is None:
            marks.append("confirmed")  # a scan saw the new certificate everywhere the old one was
        due = campaign.revoke_old_after
        revoke_due = due is not None and item.old_revoked_at is None and item.reissued_at + due <= now
        # An agent's old certificate goes once the replacement is in place (its deployment
        # report, its first request with a new identity): revoked earlier, the host would
        # serve or authenticate with a revoked certificate until it deploys (or for good, if
        # it crashed between obtaining and saving the new one). The deadline overrides this.
        in_place = item.holder is None or item.deployed_at is not None or "deployed" in marks
        if revoke_due and in_place and self._revoke_old(campaign, item):
            marks.append("old_revoked")
        if marks:
            with self._uow() as uow:
                for milestone in marks:
                    uow.lifecycle.campaigns.mark(campaign.id, item.certificate_id, milestone, now)

    def _note_failed_deployment(self, campaign: Campaign, item: CampaignItem) -> None:
        """The holder's last report on the successor says it could not put it in place (an
        endpoint whose TLS stack cannot present the new key type: nginx on OpenSSL 3.0 and
        ML-DSA): kept as the item's outcome. The campaign goes on; the item waits for a
        deployment (or its deadline)."""
        assert item.holder is not None
        with self._uow(read_only=True) as uow:
            reports = [
                d for d in uow.agents.latest_deployments(item.holder) if d.certificate_id == item.successor_id
            ]
            successor = uow.lifecycle.lineage.certificate(item.successor_id or 0)
        failed = [d for d in reports if d.status.value != "deployed"]
        if not failed or successor is None:
            return
        report = failed[0]
        key = key_label(successor)
        cause = f"endpoint cannot present {key}" if key.startswith("ml-dsa") else "not put in place"
        detail = report.detail.removeprefix(f"{cause}: ")  # the agent names it itself (agent/migration.py)
        outcome = f"issued; {report.status.value} on {item.holder} ({report.name}): {cause}: {detail}"
        if item.last_error != outcome[:2000]:
            with self._uow() as uow:
                uow.lifecycle.campaigns.note(campaign.id, item.certificate_id, outcome[:2000])

    def link(self, campaign: Campaign, item: CampaignItem) -> bool:
        """Record the replacement an item's client (ACME, agent) obtained, if there is one."""
        with self._uow(read_only=True) as uow:  # most rounds find nothing: no write lock
            found = self._client_renewal(uow, campaign, item)
        if found is None:
            return False
        successor, link = found
        with contextlib.suppress(Conflict), self._uow() as uow:  # Conflict: recorded meanwhile
            if link is not None:
                uow.lifecycle.lineage.add(link)
            uow.lifecycle.campaigns.reissued(
                campaign.id, item.certificate_id, None, successor, self._clock.now()
            )
        return True

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
        identity = AGENT_IDENTITY_TAG in old.tags
        for candidate in uow.lifecycle.lineage.unlinked_with_name(old.id, old.sans[0], 50):
            if (
                candidate.id is not None
                and candidate.first_seen >= campaign.created_at
                and set(candidate.sans) == set(old.sans)
                and candidate.team == old.team
                # from the campaign's CA (never the compromised one a stale process still
                # issued from), under its profile and of its key type when it names them
                # (a client renewing as before is no migration), an identity only for one
                and campaign.to_ca_id in (None, candidate.issuer_ca_id)
                and campaign.to_profile in (None, candidate.profile)
                and (campaign.to_profile is None or campaign.to_key_type in (None, key_label(candidate)))
                and (AGENT_IDENTITY_TAG in candidate.tags) == identity
            ):
                now = self._clock.now()
                actor = f"campaign:{campaign.id}"
                return candidate.id, LineageLink(
                    candidate.id, old.id, LineageKind.ACME, now, actor, campaign.id
                )
        return None

    # -- the deadline --------------------------------------------------------------------------

    def overdue(self, campaign: Campaign) -> None:
        """Past the deadline: revoke the old certificate of every item still waiting, mark it
        (``overdue-revoked``, or ``old_revoked`` for a replacement not yet deployed) and tell
        its team, naming the host, with a ``rotation-overdue`` event in the same transaction."""
        after = 0
        while True:
            with self._uow(read_only=True) as uow:
                page = uow.lifecycle.campaigns.unfinished(campaign.id, after, _PAGE)
            for item in page:
                self._revoke_overdue(campaign, item)
            if len(page) < _PAGE:
                return
            after = page[-1].certificate_id

    def _revoke_overdue(self, campaign: Campaign, item: CampaignItem) -> None:
        waited, since = item.waiting(campaign)
        if not self._revoke_old(campaign, item):
            return  # refused: the reason is on the item; the next round tries again
        now = self._clock.now()
        reason = (
            f"not replaced by the deadline {iso(campaign.deadline_at)}: revoked while waiting for {waited}"
        )
        with self._uow() as uow:
            campaigns = uow.lifecycle.campaigns
            if item.state is ItemState.REISSUED:
                campaigns.mark(campaign.id, item.certificate_id, "old_revoked", now)
                campaigns.note(campaign.id, item.certificate_id, reason)
            elif not campaigns.overdue(campaign.id, item.certificate_id, now, reason):
                return  # reissued meanwhile: the next observation revokes the old one
            record = uow.lifecycle.lineage.certificate(item.certificate_id)
            if record is None:
                return
            details = {
                "campaign": campaign.id,
                "campaign_kind": campaign.kind,
                "host": item.holder,
                "names": list(record.sans),
                "waited_for": waited,
                "since": iso(since),
                "deadline": iso(campaign.deadline_at),
                "reason": campaign.revoke_reason,
                "successor_serial": item.successor_serial,
            }
            key = _key(campaign, f"overdue:{item.serial}")
            emit(
                uow,
                certificate_event(
                    uow, EventKind.ROTATION_OVERDUE, record, now, details=details, dedup_key=key
                ),
            )

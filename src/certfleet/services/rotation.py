"""Rotation campaigns: replace every selected certificate through the renewal path, track each
one to deployment, confirmation and revocation of the old one, and resume after a crash.

What runs where (see ``certfleet.lifecycle.campaigns`` for the item kinds): same-key reissues
and, with ``--generate-keys``, new keys are done here; new keys for certificates whose key
certfleet never held wait for their holders; ACME and agent certificates wait for their
clients, nudged by their ARI window (in the past, "renew now", when the campaign revokes the
old certificates). Every step is idempotent: state lives in the
database, items are leased like renewal jobs, and a resumed run adopts a replacement a killed
run already issued (same key, names and CA) instead of issuing a second one.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from certfleet.access import Principal
from certfleet.audit import AuditLog
from certfleet.ca import get_profile
from certfleet.clock import Clock
from certfleet.errors import CertfleetError, InvalidInput, NotFound
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.campaigns import (
    Campaign,
    CampaignItem,
    CampaignReport,
    CampaignRequest,
    CampaignStatus,
    ItemAction,
    ItemState,
    NewItem,
    PlannedItem,
    classify,
)
from certfleet.lifecycle.jobs import agent_holder
from certfleet.lifecycle.settings import LifecycleSettings
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.services._rotation_holders import KeyHolders
from certfleet.services._rotation_milestones import Milestones, announce
from certfleet.services._rotation_run import CampaignRunner, Progress, get_campaign
from certfleet.services.authorities import AuthorityService
from certfleet.services.renewal import RenewalService, Revoker
from certfleet.x509 import KeyType

__all__ = ["RotationService", "ari_window"]

_PAGE = 1000
ARI_NOW_SPAN = dt.timedelta(hours=1)  # as the ACME server's "renew now" (RFC 9773 4.2)


def ari_window(campaign: Campaign, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The ARI window a campaign gives the certificates its clients renew. Revoking the old
    ones (a compromise, ``--revoke-old-after``): a window that ENDED an hour ago, which RFC 9773
    section 4.2 makes "renew now" for every client whatever its clock skew or random pick.
    Otherwise the next hour, which spreads the fleet's renewals over it."""
    if campaign.kind == "compromise" or campaign.revokes:
        return now - 2 * ARI_NOW_SPAN, now - ARI_NOW_SPAN
    return now, now + ARI_NOW_SPAN


class RotationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        renewal: RenewalService,
        authorities: AuthorityService,
        revoke: Revoker,
        clock: Clock,
        settings: LifecycleSettings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._uow = uow
        self._authorities = authorities
        self._clock = clock
        self._milestones = Milestones(uow, renewal, revoke, clock)
        self._runner = CampaignRunner(
            uow, renewal, self._current_ca, self._milestones, clock, settings, sleep
        )
        self._holders = KeyHolders(uow, renewal, self._milestones, clock)

    # -- selecting and creating --------------------------------------------------------------

    def preview(self, request: CampaignRequest) -> list[PlannedItem]:
        """What a campaign would do (``--dry-run``): one line per selected certificate."""
        request = self._check(request)
        now = self._clock.now()
        selection = request.selection
        hints = {f: v for f in ("team", "ca", "key", "key-size") if (v := selection.single(f)) is not None}
        planned: list[PlannedItem] = []
        after = 0
        while True:
            with self._uow(read_only=True) as uow:
                page = uow.lifecycle.campaigns.candidates(hints, after, _PAGE)
            for record, from_acme in page:
                if selection.matches(record, now):
                    action, note = classify(record, from_acme, request)
                    planned.append(PlannedItem(record, action, note))
            if len(page) < _PAGE:
                return planned
            assert page[-1][0].id is not None
            after = page[-1][0].id

    def _check(self, request: CampaignRequest) -> CampaignRequest:
        """Refuse what cannot run; a ``to_profile`` that certifies only some key types
        (``internal-mtls-pq``: ML-DSA) sets ``to_key_type`` to its first when none was given."""
        if request.to_profile is not None:
            if request.to_ca is not None:
                raise InvalidInput(
                    "--to-profile chooses the CA (its hierarchy): give it or --to-ca, not both"
                )
            try:
                profile = get_profile(request.to_profile)
            except CertfleetError as exc:
                raise InvalidInput(f"--to-profile: {exc.detail}") from exc
            key_types = profile.key_types
            if request.to_key_type is not None and key_types and request.to_key_type.value not in key_types:
                raise InvalidInput(
                    f"profile {profile.name} certifies {', '.join(key_types)} keys, not {request.to_key_type}"
                )
            if request.to_key_type is None and key_types:
                request = replace(request, to_key_type=KeyType.parse(key_types[0]))
        if request.to_ca is not None:
            current = self._current_ca()
            if request.to_ca != current:
                raise InvalidInput(
                    f"--to-ca {request.to_ca} is not the issuing CA ({current}): campaigns issue from the "
                    "current issuing CA; run 'certfleet ca rotate' to make a new one"
                )
        if request.generate_dir is not None and request.to_key_type is None:
            raise InvalidInput("--generate-keys needs --to-key-type")
        return request

    def _current_ca(self) -> str:
        self._authorities.refresh()
        return self._authorities.issuing_authority().issuer.id

    def create(self, request: CampaignRequest, *, actor: str) -> Campaign:
        """Record the campaign and one item per selected managed certificate, in one
        transaction; ARI windows of items waiting for a client move (see :func:`ari_window`)."""
        request = self._check(request)
        planned = [p for p in self.preview(request) if p.action is not None]
        if not planned:
            raise NotFound(f"no managed certificate matches {request.selection}")
        if request.deadline is not None and request.deadline <= dt.timedelta(0):
            raise InvalidInput("a campaign's deadline must be in the future (e.g. 24h)")
        now = self._clock.now()
        campaign = Campaign(
            id=uuid.uuid4().hex,
            kind=request.kind,
            selection=str(request.selection),
            created_at=now,
            actor=actor,
            status=CampaignStatus.RUNNING,
            total=len(planned),
            to_key_type=request.to_key_type.value if request.to_key_type else None,
            to_ca_id=request.to_ca,
            to_profile=request.to_profile,
            revoke_old_after=request.revoke_old_after,
            revoke_reason=request.revoke_reason,
            generate_dir=str(request.generate_dir.resolve()) if request.generate_dir else None,
            deadline_at=now + request.deadline if request.deadline is not None else None,
        )
        initial = {
            ItemAction.REISSUE: ItemState.PENDING,
            ItemAction.GENERATE: ItemState.PENDING,
            ItemAction.REKEY: ItemState.AWAITING_KEY,
            ItemAction.ARI: ItemState.AWAITING_CLIENT,
        }
        items = []
        for p in planned:
            assert p.action is not None and p.record.id is not None
            holder = agent_holder(p.record.tags) if p.action is ItemAction.ARI else None
            items.append(NewItem(p.record.id, p.record.serial, p.action, initial[p.action], holder))
        start, end = ari_window(campaign, now)
        with self._uow() as uow:
            uow.lifecycle.campaigns.add(campaign, items, now)
            for item in items:
                if item.state is not ItemState.PENDING:
                    uow.lifecycle.campaigns.set_ari_window(
                        item.serial, start, end, now, f"campaign:{campaign.id}"
                    )
            AuditLog(uow.audit, self._clock).record(
                actor, "campaign.created", campaign.id, campaign.to_dict()
            )
            announce(uow, campaign, "created", uow.lifecycle.campaigns.counts(campaign.id), now)
        return campaign

    # -- running -----------------------------------------------------------------------------

    def get(self, campaign_id: str) -> Campaign:
        return get_campaign(self._uow, campaign_id)

    def run(
        self, campaign_id: str, *, progress: Progress | None = None, generate: bool = True
    ) -> CampaignReport:
        """Work the campaign's pending items until none is due, then observe milestones.
        ``generate`` false leaves ``--generate-keys`` items to the CLI that asked for them
        (their keys go to a directory on that machine)."""
        return self._runner.run(campaign_id, progress=progress, generate=generate)

    def run_to_end(self, campaign_id: str, *, progress: Progress | None = None) -> CampaignReport:
        """Work the campaign and wait out items another worker (or a killed run) leased."""
        return self._runner.run_to_end(campaign_id, progress=progress)

    # -- milestones --------------------------------------------------------------------------

    def follow(self, campaign: Campaign) -> CampaignReport:
        """Observe what happened since: clients' replacements, deployments and confirmations
        seen by scans, revocations that fell due, the deadline; then update the status."""
        return self._milestones.follow(campaign)

    def advance_open(self) -> list[CampaignReport]:
        """One scheduler round over every open campaign (``--generate-keys`` items excepted)."""
        with self._uow(read_only=True) as uow:
            campaigns = list(uow.lifecycle.campaigns.open())
        return [self.run(c.id, generate=False) for c in campaigns]

    # -- reading and key holders -------------------------------------------------------------

    def report(self, campaign_id: str, *, refresh: bool = False) -> CampaignReport:
        campaign = self.get(campaign_id)
        if refresh:
            return self.follow(campaign)
        with self._uow(read_only=True) as uow:
            return CampaignReport(campaign, uow.lifecycle.campaigns.counts(campaign.id))

    def list(self, limit: int = 100) -> list[CampaignReport]:
        with self._uow(read_only=True) as uow:
            return [
                CampaignReport(c, uow.lifecycle.campaigns.counts(c.id))
                for c in uow.lifecycle.campaigns.list(limit)
            ]

    def items(
        self, campaign_id: str, *, after_id: int = 0, limit: int = 100, state: ItemState | None = None
    ) -> Sequence[CampaignItem]:
        self.get(campaign_id)
        with self._uow(read_only=True) as uow:
            return uow.lifecycle.campaigns.items(campaign_id, after_id, limit, state)

    def waiting(self, campaign_id: str, *, limit: int = 100) -> Sequence[CampaignItem]:
        """Items still waiting for something (``CampaignItem.waiting``), by certificate id."""
        campaign = self.get(campaign_id)
        with self._uow(read_only=True) as uow:
            found = uow.lifecycle.campaigns.unfinished(campaign_id, 0, limit)
        return [i for i in found if i.waiting(campaign)[0] is not None]

    def submit_csr(
        self, campaign_id: str, serial: str, csr_pem: bytes, *, actor: str, principal: Principal | None = None
    ) -> CertificateRecord:
        """The key holder's new key for an ``awaiting-key`` item (see :class:`KeyHolders`)."""
        return self._holders.submit_csr(campaign_id, serial, csr_pem, actor=actor, principal=principal)

    def replacement_in_use(self, certificate_id: int, holder: str) -> bool:
        """An agent uses a certificate: True while items of the agent still wait."""
        return self._holders.replacement_in_use(certificate_id, holder)

    def mark_deployed(
        self, campaign_id: str, serial: str, *, principal: Principal | None = None
    ) -> CampaignItem:
        """The key holder reports the replacement in place (an agent after deploying it)."""
        return self._holders.mark_deployed(campaign_id, serial, principal=principal)

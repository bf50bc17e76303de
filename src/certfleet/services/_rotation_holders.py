"""Rotation as its key holders see it: a new key submitted by CSR for an item that waits
for one, a replacement reported deployed, and an agent's first use of a replacement."""

from __future__ import annotations

from certfleet.access import Principal, Scope
from certfleet.clock import Clock
from certfleet.errors import Conflict, InvalidInput, NotFound
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.campaigns import Campaign, CampaignItem, ItemAction, ItemState
from certfleet.lifecycle.lineage import LineageKind
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services._rotation_milestones import Milestones
from certfleet.services._rotation_run import get_campaign, latest_chain
from certfleet.services.renewal import RenewalService
from certfleet.x509 import csr_public_key, describe_public_key, load_csr, parse_names

__all__ = ["KeyHolders"]

_PAGE = 1000


class KeyHolders:
    def __init__(
        self, uow: UnitOfWorkFactory, renewal: RenewalService, milestones: Milestones, clock: Clock
    ) -> None:
        self._uow = uow
        self._renewal = renewal
        self._milestones = milestones
        self._clock = clock

    def _visible_item(self, campaign_id: str, serial: str, principal: Principal | None) -> CampaignItem:
        serial = serial.strip().lower().replace(":", "").lstrip("0") or "0"
        with self._uow(read_only=True) as uow:
            item = uow.lifecycle.campaigns.item(campaign_id, serial)
            record = uow.lifecycle.lineage.certificate(item.certificate_id) if item else None
        if (
            item is None
            or record is None
            or (principal is not None and not principal.can_see_team(record.team))
        ):
            raise NotFound(f"campaign {campaign_id} has no certificate {serial}")
        return item

    def submit_csr(
        self, campaign_id: str, serial: str, csr_pem: bytes, *, actor: str, principal: Principal | None = None
    ) -> CertificateRecord:
        """The key holder's new key for an ``awaiting-key`` item: certify it for the old
        certificate's names, profile and team (the CSR proves possession of the key)."""
        if principal is not None:
            principal.require(Scope.ISSUE)
        campaign = get_campaign(self._uow, campaign_id)
        item = self._visible_item(campaign_id, serial, principal)
        if item.state is ItemState.REISSUED:
            raise Conflict(f"certificate {item.serial} was already replaced by {item.successor_serial}")
        if item.action is not ItemAction.REKEY:
            raise Conflict(
                f"certificate {item.serial} is replaced by the server ({item.action.value}), not by a CSR"
            )
        chain = latest_chain(self._uow, self._renewal, item)
        if principal is not None:
            principal.authorize_names(parse_names(chain[-1].sans))
        public_key = csr_public_key(load_csr(csr_pem))
        got = describe_public_key(public_key).label
        if got != campaign.to_key_type:
            raise InvalidInput(f"the campaign asks for a {campaign.to_key_type} key; the CSR has {got}")
        now = self._clock.now()

        def claim(uow: UnitOfWork, new: CertificateRecord) -> bool:
            assert new.id is not None
            return uow.lifecycle.campaigns.reissued(campaign.id, item.certificate_id, None, new.id, now)

        return self._renewal.reissue(
            chain[-1],
            kind=LineageKind.REKEY,
            actor=actor,
            since=now,
            claim=claim,
            public_key=public_key,
            campaign_id=campaign.id,
        )

    def replacement_in_use(self, certificate_id: int, holder: str) -> bool:
        """An agent uses a certificate (its first request with a new identity): first link
        the replacements it obtained to the items waiting for it (rather than wait for the
        scheduler's round, after which the agent may not call again until its next run),
        then mark the certificate deployed wherever it is an item's replacement. True while
        items of the agent still wait: its next requests should report again."""
        with self._uow(read_only=True) as uow:
            waiting = uow.lifecycle.campaigns.awaiting_client(holder, _PAGE)
        campaigns: dict[str, Campaign] = {}
        linked = 0
        for item in waiting:
            campaign = campaigns.get(item.campaign_id) or get_campaign(self._uow, item.campaign_id)
            campaigns[campaign.id] = campaign
            linked += self._milestones.link(campaign, item)
        with self._uow() as uow:
            uow.lifecycle.campaigns.mark_successor(certificate_id, "deployed", self._clock.now())
        return len(waiting) > linked

    def mark_deployed(
        self, campaign_id: str, serial: str, *, principal: Principal | None = None
    ) -> CampaignItem:
        """The key holder reports the replacement in place (an agent after deploying it)."""
        item = self._visible_item(campaign_id, serial, principal)
        if item.state is not ItemState.REISSUED:
            raise Conflict(f"certificate {item.serial} has no replacement yet ({item.state.value})")
        with self._uow() as uow:
            uow.lifecycle.campaigns.mark(campaign_id, item.certificate_id, "deployed", self._clock.now())
        return self._visible_item(campaign_id, serial, principal)

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
import secrets
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.access import Principal, Scope
from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.errors import CertfleetError, Conflict, InvalidInput, NotFound
from certfleet.fs import write_atomic
from certfleet.inventory import CertificateRecord, Status
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
    key_label,
)
from certfleet.lifecycle.jobs import Lease, agent_holder
from certfleet.lifecycle.lineage import LineageKind
from certfleet.lifecycle.planning import backoff
from certfleet.lifecycle.settings import LifecycleSettings
from certfleet.services._ports import UnitOfWork, UnitOfWorkFactory
from certfleet.services._rotation_milestones import Milestones, announce
from certfleet.services.authorities import AuthorityService
from certfleet.services.renewal import LeaseLost, RenewalService, Revoker
from certfleet.x509 import (
    KeyType,
    csr_public_key,
    describe_public_key,
    generate_private_key,
    load_csr,
    parse_names,
    to_pem,
)

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
    ) -> None:
        self._uow = uow
        self._renewal = renewal
        self._authorities = authorities
        self._revoke = revoke
        self._clock = clock
        self._settings = settings
        self._milestones = Milestones(uow, renewal, revoke, clock)

    # -- selecting and creating --------------------------------------------------------------

    def preview(self, request: CampaignRequest) -> list[PlannedItem]:
        """What a campaign would do (``--dry-run``): one line per selected certificate."""
        self._check(request)
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

    def _check(self, request: CampaignRequest) -> None:
        if request.to_ca is not None:
            current = self._current_ca()
            if request.to_ca != current:
                raise InvalidInput(
                    f"--to-ca {request.to_ca} is not the issuing CA ({current}): campaigns issue from the "
                    "current issuing CA; run 'certfleet ca rotate' to make a new one"
                )
        if request.generate_dir is not None and request.to_key_type is None:
            raise InvalidInput("--generate-keys needs --to-key-type")

    def _current_ca(self) -> str:
        self._authorities.refresh()
        return self._authorities.issuing_authority().issuer.id

    def create(self, request: CampaignRequest, *, actor: str) -> Campaign:
        """Record the campaign and one item per selected managed certificate, in one
        transaction; ARI windows of items waiting for a client move (see :func:`ari_window`)."""
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
        with self._uow(read_only=True) as uow:
            campaign = uow.lifecycle.campaigns.get(campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        return campaign

    def run(
        self,
        campaign_id: str,
        *,
        progress: Callable[[CampaignItem, ItemState], None] | None = None,
        generate: bool = True,
    ) -> CampaignReport:
        """Work the campaign's pending items until none is due, then observe milestones.
        ``generate`` false leaves ``--generate-keys`` items to the CLI that asked for them
        (their keys go to a directory on that machine)."""
        campaign = self.get(campaign_id)
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
        return self.follow(campaign)

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

    def _latest(self, item: CampaignItem) -> list[CertificateRecord]:
        with self._uow(read_only=True) as uow:
            record = uow.lifecycle.lineage.certificate(item.certificate_id)
        if record is None:
            return []
        return self._renewal.lineage(record)

    def _satisfies(self, record: CertificateRecord, campaign: Campaign, target_ca: str) -> bool:
        if campaign.to_key_type is not None and key_label(record) != campaign.to_key_type:
            return False
        return (
            record.issuer_ca_id == (campaign.to_ca_id or target_ca)
            and record.first_seen >= campaign.created_at
        )

    def _reissue(self, campaign: Campaign, item: CampaignItem, lease: Lease, target_ca: str) -> ItemState:
        chain = self._latest(item)
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
            key = self._generated_key(campaign, item)
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
            expected_ca=target_ca,
            public_key=key.public_key() if key is not None else None,
            campaign_id=campaign.id,
        )
        if key is not None:
            self._write_files(campaign, item, new)
        return ItemState.REISSUED

    def _park(
        self, campaign: Campaign, item: CampaignItem, lease: Lease, state: ItemState, reason: str | None
    ) -> ItemState:
        with self._uow() as uow:
            uow.lifecycle.campaigns.waiting(campaign.id, item.certificate_id, lease.token, state, reason)
        return state

    def _item_dir(self, campaign: Campaign, item: CampaignItem) -> Path:
        assert campaign.generate_dir is not None
        return Path(campaign.generate_dir) / item.serial

    def _generated_key(self, campaign: Campaign, item: CampaignItem) -> CertificateIssuerPrivateKeyTypes:
        """The item's new key: read back when a killed run already wrote it (so the same key
        is certified and the certificate it may already have is adopted), else generated and
        written (0600) before any certificate is requested for it."""
        assert campaign.to_key_type is not None
        directory = self._item_dir(campaign, item)
        path = directory / "key.pem"
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            return key  # type: ignore[return-value]
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = generate_private_key(KeyType.parse(campaign.to_key_type))
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_atomic(path, pem, mode=0o600)
        return key

    def _write_files(self, campaign: Campaign, item: CampaignItem, new: CertificateRecord) -> None:
        directory = self._item_dir(campaign, item)
        chain = self._renewal.issuing_chain(new)
        write_atomic(directory / "cert.pem", to_pem([new.certificate()]).encode())
        write_atomic(directory / "chain.pem", to_pem(chain).encode())
        write_atomic(directory / "fullchain.pem", to_pem((new.certificate(), *chain)).encode())

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
        campaign = self.get(campaign_id)
        item = self._visible_item(campaign_id, serial, principal)
        if item.state is ItemState.REISSUED:
            raise Conflict(f"certificate {item.serial} was already replaced by {item.successor_serial}")
        if item.action is not ItemAction.REKEY:
            raise Conflict(
                f"certificate {item.serial} is replaced by the server ({item.action.value}), not by a CSR"
            )
        chain = self._latest(item)
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
            campaign = campaigns.get(item.campaign_id) or self.get(item.campaign_id)
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

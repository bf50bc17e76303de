"""A campaign, its items and their states: the records every part of a rotation campaign reads
(see ``certfleet.lifecycle.campaigns`` for what each action and milestone means)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from certfleet.clock import iso

__all__ = [
    "FINAL_STATES",
    "Campaign",
    "CampaignCounts",
    "CampaignItem",
    "CampaignStatus",
    "ItemAction",
    "ItemState",
    "NewItem",
]


class CampaignStatus(enum.StrEnum):
    RUNNING = "running"  # items still to reissue server-side
    WAITING = "waiting"  # waiting for key holders, ACME clients, retries or revocation times
    COMPLETED = "completed"  # every item reissued (and its old certificate revoked if asked)


class ItemAction(enum.StrEnum):
    REISSUE = "reissue"
    REKEY = "rekey"
    GENERATE = "generate"
    ARI = "ari"


class ItemState(enum.StrEnum):
    PENDING = "pending"  # server-side work to do
    AWAITING_KEY = "awaiting-key"  # the key holder must send a CSR of the new key type
    AWAITING_CLIENT = "awaiting-client"  # the ACME client or agent must renew (ARI)
    FAILED = "failed"  # the last attempt failed; retried after a backoff
    REISSUED = "reissued"  # the successor exists
    SKIPPED = "skipped"  # nothing to replace any more (revoked or gone); reason kept
    OVERDUE_REVOKED = "overdue-revoked"  # not replaced by the deadline: revoked anyway


# States an item leaves only by a server action; the rest wait for something.
FINAL_STATES = (ItemState.REISSUED, ItemState.SKIPPED, ItemState.OVERDUE_REVOKED)


@dataclass(frozen=True)
class NewItem:
    certificate_id: int
    serial: str
    action: ItemAction
    state: ItemState
    holder: str | None = None  # the agent holding the certificate


@dataclass(frozen=True)
class Campaign:
    id: str
    kind: str  # "rotation" or "compromise"
    selection: str
    created_at: dt.datetime
    actor: str
    status: CampaignStatus
    total: int
    to_key_type: str | None = None
    to_ca_id: str | None = None
    to_profile: str | None = None  # reissue under this profile (and its CA), not each one's own
    revoke_old_after: dt.timedelta | None = None
    revoke_reason: str = "superseded"
    generate_dir: str | None = None
    finished_at: dt.datetime | None = None
    deadline_at: dt.datetime | None = None

    @property
    def revokes(self) -> bool:
        """Whether replaced certificates are revoked (a deadline implies it)."""
        return self.revoke_old_after is not None or self.deadline_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "selection": self.selection,
            "status": self.status.value,
            "total": self.total,
            "to_key_type": self.to_key_type,
            "to_ca": self.to_ca_id,
            "to_profile": self.to_profile,
            "revoke_old_after_seconds": (
                int(self.revoke_old_after.total_seconds()) if self.revoke_old_after is not None else None
            ),
            "revoke_reason": self.revoke_reason,
            "generate_keys": self.generate_dir is not None,
            "deadline": iso(self.deadline_at),
            "created_at": iso(self.created_at),
            "actor": self.actor,
            "finished_at": iso(self.finished_at),
        }


@dataclass(frozen=True)
class CampaignItem:
    campaign_id: str
    certificate_id: int
    serial: str
    action: ItemAction
    state: ItemState
    due_at: dt.datetime
    successor_id: int | None = None
    successor_serial: str | None = None
    reissued_at: dt.datetime | None = None
    deployed_at: dt.datetime | None = None
    confirmed_at: dt.datetime | None = None
    old_revoked_at: dt.datetime | None = None
    failures: int = 0
    last_error: str | None = None
    holder: str | None = None

    @property
    def milestone(self) -> str:
        """The furthest step reached, the one a progress display shows."""
        for name, at in (
            ("old-revoked", self.old_revoked_at),
            ("confirmed", self.confirmed_at),
            ("deployed", self.deployed_at),
        ):
            if at is not None:
                return name
        return self.state.value

    def waiting(self, campaign: Campaign) -> tuple[str | None, dt.datetime | None]:
        """What the item waits for, and since when (None: nothing, it is done)."""
        client = f"agent {self.holder}" if self.holder else "its client (ACME, SCEP or EST)"
        since = self.reissued_at or campaign.created_at
        if self.state is ItemState.PENDING:
            return "the server to reissue it", campaign.created_at
        if self.state is ItemState.FAILED:
            return f"a retry at {iso(self.due_at)} ({self.last_error})", self.due_at
        if self.state is ItemState.AWAITING_KEY:
            return f"a CSR for a {campaign.to_key_type} key from its key holder", campaign.created_at
        if self.state is ItemState.AWAITING_CLIENT:
            return f"{client} to renew it", campaign.created_at
        if self.state is not ItemState.REISSUED or not campaign.revokes or self.old_revoked_at:
            return None, None
        if self.holder and self.deployed_at is None:
            return f"{client} to deploy {self.successor_serial}", since
        assert self.reissued_at is not None
        due = self.reissued_at + (campaign.revoke_old_after or dt.timedelta(0))
        return f"revocation of the old certificate (due {iso(due)})", self.deployed_at or since

    def to_dict(self, campaign: Campaign | None = None) -> dict[str, Any]:
        waiting, since = self.waiting(campaign) if campaign is not None else (None, None)
        return {
            "serial": self.serial,
            "action": self.action.value,
            "state": self.state.value,
            "milestone": self.milestone,
            "holder": self.holder,
            "waiting_for": waiting,
            "since": iso(since),
            "successor_serial": self.successor_serial,
            "reissued_at": iso(self.reissued_at),
            "deployed_at": iso(self.deployed_at),
            "confirmed_at": iso(self.confirmed_at),
            "old_revoked_at": iso(self.old_revoked_at),
            "failures": self.failures,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class CampaignCounts:
    """Items per state plus the milestones after reissue."""

    states: Mapping[str, int] = field(default_factory=dict)
    deployed: int = 0
    confirmed: int = 0
    old_revoked: int = 0

    @property
    def total(self) -> int:
        return sum(self.states.values())

    def of(self, state: ItemState) -> int:
        return self.states.get(state.value, 0)

    def status(self, revoke_required: bool) -> CampaignStatus:
        """Completed when every item is reissued or skipped (and, if asked, every replaced
        certificate revoked); running while items wait for server-side work."""
        if self.of(ItemState.PENDING):
            return CampaignStatus.RUNNING
        reissued, overdue = self.of(ItemState.REISSUED), self.of(ItemState.OVERDUE_REVOKED)
        if reissued + self.of(ItemState.SKIPPED) + overdue == self.total and (
            not revoke_required or self.old_revoked >= reissued + overdue
        ):
            return CampaignStatus.COMPLETED
        return CampaignStatus.WAITING

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            **{s.value: self.of(s) for s in ItemState},
            "deployed": self.deployed,
            "confirmed": self.confirmed,
            "old_revoked": self.old_revoked,
        }

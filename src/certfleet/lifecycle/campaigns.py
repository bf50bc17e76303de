"""Rotation campaigns: replace every selected certificate, tracked one item per certificate.

What certfleet can do for an item depends on who holds its private key. certfleet keeps no
private key of a leaf (a key it generates is handed over once), so:

* ``reissue``: same key, possibly another issuing CA. Done server-side: the CA certifies the
  public key it already certified, as the renewal job does.
* ``rekey``: a new key type was asked for. Only the key holder can make the key: the item
  waits (``awaiting-key``) for a CSR of the new type (``POST .../items/{serial}/csr``).
* ``generate``: the operator asked certfleet to make the new keys (``--generate-keys DIR``):
  each key is written (0600) before its certificate is requested, so a resumed campaign
  finds it again and certifies the same key; deploying the files is then the operator's job.
* ``ari``: the certificate came from an ACME order or a certfleet agent, whose clients renew
  on their ARI window (RFC 9773): the window is moved to now and the item waits until a
  replacement (same names and team, issued since the campaign began) appears.

Milestones after ``reissued``: ``deployed`` (a scan saw the new certificate anywhere, or its
holder reported it), ``confirmed`` (a scan saw it at every place the old one was seen), and
``old_revoked`` once ``revoke_old_after`` has passed since the reissue.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from certfleet.inventory import CertificateRecord, iso
from certfleet.lifecycle.jobs import SERVER_TAG, Lease, external_reason
from certfleet.lifecycle.selection import Selection
from certfleet.x509 import KeyDescription, KeyType

__all__ = [
    "Campaign",
    "CampaignCounts",
    "CampaignItem",
    "CampaignReport",
    "CampaignRepository",
    "CampaignRequest",
    "CampaignStatus",
    "ItemAction",
    "ItemState",
    "NewItem",
    "PlannedItem",
    "classify",
    "key_label",
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


@dataclass(frozen=True)
class NewItem:
    certificate_id: int
    serial: str
    action: ItemAction
    state: ItemState


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
    revoke_old_after: dt.timedelta | None = None
    revoke_reason: str = "superseded"
    generate_dir: str | None = None
    finished_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "selection": self.selection,
            "status": self.status.value,
            "total": self.total,
            "to_key_type": self.to_key_type,
            "to_ca": self.to_ca_id,
            "revoke_old_after_seconds": (
                int(self.revoke_old_after.total_seconds()) if self.revoke_old_after is not None else None
            ),
            "revoke_reason": self.revoke_reason,
            "generate_keys": self.generate_dir is not None,
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "action": self.action.value,
            "state": self.state.value,
            "milestone": self.milestone,
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
        reissued = self.of(ItemState.REISSUED)
        if reissued + self.of(ItemState.SKIPPED) == self.total and (
            not revoke_required or self.old_revoked >= reissued
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


class CampaignRepository(Protocol):
    def candidates(
        self, hints: Mapping[str, str], after_id: int, limit: int
    ) -> Sequence[tuple[CertificateRecord, bool]]:
        """Active certificates certfleet's CA issued, by id, narrowed by single-valued
        ``hints`` (team, ca, key, key-size); with whether an ACME order produced each."""
        ...

    def add(self, campaign: Campaign, items: Sequence[NewItem], at: dt.datetime) -> None: ...

    def get(self, campaign_id: str) -> Campaign | None: ...

    def list(self, limit: int) -> Sequence[Campaign]: ...

    def open(self) -> Sequence[Campaign]:
        """Campaigns not completed, oldest first."""
        ...

    def set_status(self, campaign_id: str, status: CampaignStatus, at: dt.datetime) -> None: ...

    def counts(self, campaign_id: str) -> CampaignCounts: ...

    def claim(self, campaign_id: str, now: dt.datetime, lease: Lease, limit: int) -> Sequence[CampaignItem]:
        """Lease up to ``limit`` pending or failed items due at ``now``."""
        ...

    def item(self, campaign_id: str, serial: str) -> CampaignItem | None: ...

    def items(
        self, campaign_id: str, after_id: int, limit: int, state: ItemState | None = None
    ) -> Sequence[CampaignItem]:
        """Items by certificate id (keyset pagination), optionally in one state."""
        ...

    def following(self, campaign_id: str, after_id: int, limit: int) -> Sequence[CampaignItem]:
        """Items with milestones still to observe: awaiting their client, or reissued and
        not yet confirmed or not yet revoked."""
        ...

    def places(self, certificate_ids: Sequence[int]) -> Mapping[int, set[tuple[str, str, str, bool]]]:
        """Where discovery saw each certificate: (kind, location, SNI, still present)."""
        ...

    def reissued(
        self, campaign_id: str, certificate_id: int, token: str | None, successor_id: int, at: dt.datetime
    ) -> bool:
        """Mark reissued; with a token, only while our lease holds."""
        ...

    def failed(
        self, campaign_id: str, certificate_id: int, token: str, reason: str, due_at: dt.datetime
    ) -> bool: ...

    def waiting(
        self, campaign_id: str, certificate_id: int, token: str, state: ItemState, reason: str | None = None
    ) -> bool:
        """Park a leased item in another state (waiting for a client, or skipped)."""
        ...

    def note(self, campaign_id: str, certificate_id: int, reason: str) -> None:
        """Keep a reason on an item without changing its state (a refused revocation)."""
        ...

    def mark(self, campaign_id: str, certificate_id: int, milestone: str, at: dt.datetime) -> None:
        """Set ``deployed_at``, ``confirmed_at`` or ``old_revoked_at`` if not set yet."""
        ...

    def set_ari_window(
        self, serial: str, start: dt.datetime, end: dt.datetime, at: dt.datetime, actor: str
    ) -> None:
        """Set the certificate's ARI window (the ACME server's override table, RFC 9773)."""
        ...

    def retire_ca(self, ca_id: str) -> None:
        """Stop issuing from a CA (``active`` false); it still publishes CRLs and OCSP."""
        ...


def key_label(record: CertificateRecord) -> str:
    return KeyDescription(record.key_algorithm, record.key_size).label


@dataclass(frozen=True)
class CampaignRequest:
    """What ``certfleet rotate`` asks for. ``to_ca`` must be the current issuing CA (a
    campaign issues from it; ``certfleet ca rotate`` makes a new one); ``generate_dir`` makes
    certfleet generate the new keys there (an explicit export of private keys)."""

    selection: Selection
    to_key_type: KeyType | None = None
    to_ca: str | None = None
    revoke_old_after: dt.timedelta | None = None
    generate_dir: Path | None = None
    kind: str = "rotation"
    revoke_reason: str = "superseded"


@dataclass(frozen=True)
class PlannedItem:
    """A dry-run line: what the campaign would do with one certificate, or why not."""

    record: CertificateRecord
    action: ItemAction | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": self.record.serial,
            "names": list(self.record.sans),
            "key": key_label(self.record),
            "issuer_ca_id": self.record.issuer_ca_id,
            "team": self.record.team,
            "action": self.action.value if self.action else "skip",
            "note": self.note,
        }


@dataclass(frozen=True)
class CampaignReport:
    campaign: Campaign
    counts: CampaignCounts

    def to_dict(self) -> dict[str, Any]:
        return {**self.campaign.to_dict(), "progress": self.counts.to_dict()}


def classify(
    record: CertificateRecord, from_acme: bool, request: CampaignRequest
) -> tuple[ItemAction | None, str]:
    """How a campaign replaces one certificate of certfleet's CA, or why it cannot (None)."""
    if SERVER_TAG in record.tags:
        return None, "serve's own certificate: delete DATA/tls/server.crt and restart serve"
    external = external_reason(record.tags, from_acme)
    if external is not None:
        return ItemAction.ARI, f"{external}; its ARI window moves to now"
    wanted = request.to_key_type.value if request.to_key_type else None
    if wanted is not None and key_label(record) != wanted:
        if request.generate_dir is not None:
            return ItemAction.GENERATE, f"new {wanted} key written under {request.generate_dir}"
        return ItemAction.REKEY, f"waits for its key holder to send a {wanted} CSR"
    return ItemAction.REISSUE, "reissued for the same key"

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
  on their ARI window (RFC 9773): the window is moved and the item waits until a replacement
  (same names and team, from the campaign's CA, issued since the campaign began) appears.
  When the campaign revokes the old certificates (a compromise, ``--revoke-old-after``) the
  window is moved wholly into the past, which RFC 9773 section 4.2 defines as "renew now":
  a window that merely starts now lets a client such as certbot pick a random moment inside
  it, call the certificate "not yet due" and come back only after its Retry-After.
  A certificate a device enrolled over SCEP or EST is such an item too, but neither protocol
  can tell its client to renew: the item waits for the device's own re-enrolment (certmonger
  renews before expiry) and, in a compromise, is revoked at the deadline if none came.

Milestones after ``reissued``: ``deployed`` (a scan saw the new certificate anywhere, or its
holder reported it: an agent's deployment report, or its first request with a new identity),
``confirmed`` (a scan saw it at every place the old one was seen), and ``old_revoked`` once
``revoke_old_after`` has passed since the reissue. An agent's certificate (the item has a
``holder``) is revoked only after its replacement is deployed: revoking first would leave the
host serving, or authenticating with, a revoked certificate until it deploys.

A campaign may have a deadline (a compromise has one: 24 hours by default, the time the
CA/Browser Forum's Baseline Requirements allow for revoking after a key compromise). At the
deadline every item still waiting, for its client, its key holder, a retry or a deployment,
has its old certificate revoked anyway and is marked ``overdue-revoked`` (a
``rotation-overdue`` notification names the host), so a dead agent cannot keep a compromised
certificate alive; the campaign then completes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from certfleet.inventory import CertificateRecord
from certfleet.lifecycle._campaign_records import (
    FINAL_STATES,
    Campaign,
    CampaignCounts,
    CampaignItem,
    CampaignStatus,
    ItemAction,
    ItemState,
    NewItem,
)
from certfleet.lifecycle.jobs import CLIENT_ENROLLED, SERVER_TAG, Lease, external_reason
from certfleet.lifecycle.selection import Selection
from certfleet.x509 import KeyDescription, KeyType

__all__ = [
    "FINAL_STATES",
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

    def unfinished(self, campaign_id: str, after_id: int, limit: int) -> Sequence[CampaignItem]:
        """Items not in a final state, or reissued with the old certificate not revoked."""
        ...

    def overdue(self, campaign_id: str, certificate_id: int, at: dt.datetime, reason: str) -> bool:
        """Mark an item that is not reissued ``overdue-revoked`` (its old certificate revoked
        at ``at``), ending any lease on it."""
        ...

    def mark_successor(self, successor_id: int, milestone: str, at: dt.datetime) -> int:
        """Set a milestone on every item of an open campaign replaced by ``successor_id``."""
        ...

    def awaiting_client(self, holder: str, limit: int) -> Sequence[CampaignItem]:
        """Items of open campaigns waiting for this agent to renew them."""
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
    certfleet generate the new keys there (an explicit export of private keys); ``deadline``
    after the start, whatever is not replaced yet is revoked anyway. ``to_profile``: every
    successor is issued under that profile, so from the hierarchy it names (``--to-profile
    internal-mtls-pq``: the post-quantum one), with a key of its key type."""

    selection: Selection
    to_key_type: KeyType | None = None
    to_ca: str | None = None
    to_profile: str | None = None
    revoke_old_after: dt.timedelta | None = None
    generate_dir: Path | None = None
    kind: str = "rotation"
    revoke_reason: str = "superseded"
    deadline: dt.timedelta | None = None


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
    external = external_reason(record.tags, from_acme, record.source)
    if external is not None:
        if record.source in CLIENT_ENROLLED:  # no ARI: the item waits for the device
            return ItemAction.ARI, f"{external}; the campaign waits for its re-enrolment"
        return ItemAction.ARI, f"{external}; its ARI window moves to now"
    wanted = request.to_key_type.value if request.to_key_type else None
    if wanted is not None and key_label(record) != wanted:
        if request.generate_dir is not None:
            return ItemAction.GENERATE, f"new {wanted} key written under {request.generate_dir}"
        return ItemAction.REKEY, f"waits for its key holder to send a {wanted} CSR"
    return ItemAction.REISSUE, "reissued for the same key"

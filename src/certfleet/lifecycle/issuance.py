"""The storage port of the issuance hot path: the two batched writes around a signature
(serials before, records after), each one transaction for a whole batch of requests (group
commit, driven by ``certfleet.services.issuance``); ``certfleet.store`` implements it."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from certfleet.audit import AuditDraft
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.notifications.events import Event

__all__ = ["ClaimOutcome", "ClaimResult", "IssuanceLedger", "IssuedEntry", "SerialClaim"]


class ClaimOutcome(enum.Enum):
    RESERVED = "reserved"  # committed: the certificate may be signed with this serial
    TAKEN = "taken"  # the serial exists already: draw another
    KEY_BLOCKED = "key-blocked"  # the public key was revoked for keyCompromise
    ISSUER_RETIRED = "issuer-retired"  # another process retired the (cached) issuing CA
    POLICY_CHANGED = "policy-changed"  # checked against an older policy version: check again
    ANNEX_REFUSED = "annex-refused"  # the claim's annex could not be written (nothing was)


@dataclass(frozen=True)
class SerialClaim:
    """What issuance asks of the database before it signs, in one transaction."""

    serial: str
    issuer_ca_id: str
    issuer_must_be_active: bool  # an intermediate another process may have retired
    spki_sha256: str
    at: dt.datetime
    policy_checked: bool = False  # the request passed the policy gate...
    policy_version: int | None = None  # ...as of this version (None: no policy applied yet)
    # Rows an enrolment protocol writes in this same transaction, only if the serial is
    # reserved (SCEP: its transaction row and the challenge's use); None on other paths.
    annex: object | None = None


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    policy_version: int | None = None  # the version in force, read in the claim's transaction
    refusal: str | None = None  # ANNEX_REFUSED: why (the annex's ledger names it)


@dataclass(frozen=True)
class IssuedEntry:
    """What issuance writes after signing, in one transaction: the inventory record, the
    serial's new state, the audit entry and the outbox event (built once the row has its id)."""

    record: CertificateRecord
    audit: AuditDraft
    event: Callable[[CertificateRecord], Event]
    annex: object | None = None  # written in the same transaction (SCEP: the result row)


class IssuanceLedger(Protocol):
    """The two writes of issuance, each for a whole batch of requests in one transaction
    (group commit). Both raise when their transaction fails: nothing of the batch is kept."""

    def claim_serials(self, claims: Sequence[SerialClaim]) -> Sequence[ClaimResult]:
        """Per claim, in order: reserve its serial (committed before return) or say why not."""
        ...

    def record_issued(self, entries: Sequence[IssuedEntry]) -> Sequence[CertificateRecord]:
        """Store every entry; the stored records (with their ids), in order. Audit entries are
        chained under a lock on the chain head held in the database, not in this process."""
        ...

    def caused_by_items(self, error: BaseException) -> bool:
        """False when ``error`` is the database's own (unreachable, locked, out of space),
        which no item of a batch caused: its batch then fails whole, not item by item."""
        ...

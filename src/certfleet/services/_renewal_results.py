"""What a renewal round reports (one outcome per job), the revocation it may call, and who
holds a job lease."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import Protocol

from certfleet.errors import Conflict
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.jobs import JobState

__all__ = ["LeaseLost", "RenewalOutcome", "Revoker", "RoundReport", "validity_days", "worker_id"]


class Revoker(Protocol):
    def __call__(self, serial: str, reason: str, *, actor: str) -> object: ...


class LeaseLost(Conflict):
    """Another worker took the job over (our lease expired): our write was not made."""


@dataclass(frozen=True)
class RenewalOutcome:
    """One result per job: a failing certificate never aborts the round."""

    serial: str
    state: JobState
    detail: str
    successor_serial: str | None = None


@dataclass
class RoundReport:
    planned: int = 0
    rescheduled: int = 0
    outcomes: list[RenewalOutcome] = field(default_factory=list)

    def count(self, state: JobState) -> int:
        return sum(1 for o in self.outcomes if o.state is state)


def worker_id() -> str:
    """Who holds a lease, for people reading the table: host, process and a random tag."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def validity_days(record: CertificateRecord) -> int:
    """The original lifetime in whole days (a renewal keeps it; at least one day)."""
    return max(1, round((record.not_after - record.not_before).total_seconds() / 86400))

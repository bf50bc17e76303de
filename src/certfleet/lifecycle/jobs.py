"""Renewal jobs: one row per managed certificate, leased by one worker at a time.

A job is created when the planner first sees a certificate and carries its renewal time. A
worker *leases* due jobs: the lease is a token and an expiry written in the same transaction
that selects the rows (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock of
``BEGIN IMMEDIATE`` on SQLite), and every later write names the token, so a worker whose lease
ran out cannot overwrite the one that took over. A leased job's ``due_at`` is its lease
expiry: a crashed worker's job simply becomes due again.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from certfleet.clock import iso
from certfleet.inventory import Source
from certfleet.lifecycle.planning import RenewalWindow, renewal_time

__all__ = [
    "CLIENT_ENROLLED",
    "MANAGED_SOURCES",
    "OPEN_STATES",
    "JobState",
    "Lease",
    "NewJob",
    "PlanCandidate",
    "RenewalJob",
    "RenewalJobRepository",
    "agent_holder",
    "external_reason",
    "new_job",
]

# The HTTPS listener's own certificate (renewed by ``serve`` at start-up), an agent's identity
# and the certificates agents manage (renewed by the agent on its ARI window), and the
# operator's opt-out.
SERVER_TAG = "certfleet-server"
AGENT_TAG_PREFIX = "agent:"
AGENT_IDENTITY_TAG = "certfleet-agent-identity"
MANUAL_TAG = "no-auto-renew"

# Enrolled by a device over SCEP or EST: only the device holds the key, and only it can ask
# again; neither protocol has a "renew now" signal like ARI's, so a campaign waits for it
# (and revokes at its deadline what it did not replace).
CLIENT_ENROLLED: Mapping[str, str] = {
    Source.SCEP.value: "enrolled over SCEP: its device renews it (RenewalReq, RFC 8894 section 3.3.1.2)",
    Source.EST.value: "enrolled over EST: its client renews it (simplereenroll, RFC 7030 section 4.2.2)",
}
# The certificates of certfleet's CA that renewal planning and campaigns manage: issued over
# REST, ACME or to agents, and enrolled over SCEP or EST.
MANAGED_SOURCES = (Source.ISSUED.value, *CLIENT_ENROLLED)


def external_reason(
    tags: tuple[str, ...] | list[str], from_acme: bool, source: str = Source.ISSUED.value
) -> str | None:
    """Why certfleet does not renew a certificate of its CA itself, or None when it does."""
    if from_acme:
        return "ordered over ACME: its client renews it on its ARI window (RFC 9773)"
    if enrolled := CLIENT_ENROLLED.get(source):
        return enrolled
    if SERVER_TAG in tags:
        return "the HTTPS listener's certificate: serve renews it at start-up"
    if AGENT_IDENTITY_TAG in tags or any(t.startswith(AGENT_TAG_PREFIX) for t in tags):
        return "managed by a certfleet agent: it renews on its ARI window"
    if MANUAL_TAG in tags:
        return f"tagged {MANUAL_TAG}"
    return None


def agent_holder(tags: tuple[str, ...] | list[str]) -> str | None:
    """The agent that holds a certificate (its ``agent:HOST`` tag), or None."""
    for tag in tags:
        if tag.startswith(AGENT_TAG_PREFIX) and len(tag) > len(AGENT_TAG_PREFIX):
            return tag[len(AGENT_TAG_PREFIX) :]
    return None


class JobState(enum.StrEnum):
    SCHEDULED = "scheduled"  # waiting for its renewal time
    LEASED = "leased"  # a worker is renewing it
    RETRY = "retry"  # the last attempt failed; due again after the backoff
    DONE = "done"  # renewed: ``successor_id`` is the new certificate
    SKIPPED = "skipped"  # no longer renewable (revoked, superseded, gone); reason kept
    EXTERNAL = "external"  # renewed by its own client (ACME via ARI, an agent, a SCEP or EST device)


OPEN_STATES = (JobState.SCHEDULED, JobState.LEASED, JobState.RETRY)


class PlanCandidate(NamedTuple):
    """A certificate the planner has not seen yet. ``external`` says why certfleet does not
    renew it itself (None: it does).

    A named tuple, not a dataclass: a first plan of a large inventory makes one per
    certificate, and a tuple costs a third of a frozen dataclass to build."""

    certificate_id: int
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    external: str | None = None
    window: RenewalWindow | None = None  # the ARI override, when one is set


class NewJob(NamedTuple):
    """A job to insert (one per certificate, for the same reason a tuple)."""

    certificate_id: int
    serial: str
    state: JobState
    renew_at: dt.datetime
    note: str | None = None


def new_job(candidate: PlanCandidate) -> NewJob:
    """The job the planner writes for ``candidate``: its renewal time (see ``planning``), and
    ``external`` when certfleet leaves the renewal to the certificate's own client."""
    cid, serial, not_before, not_after, external, window = candidate
    at = renewal_time(not_before, not_after, serial, window)
    if external is None:
        return NewJob(cid, serial, JobState.SCHEDULED, at)
    return NewJob(cid, serial, JobState.EXTERNAL, at, external)


@dataclass(frozen=True)
class Lease:
    owner: str  # host:pid:random of the worker, for people reading the table
    token: str  # fencing token: every write after the lease names it
    until: dt.datetime


@dataclass(frozen=True)
class RenewalJob:
    certificate_id: int
    serial: str
    state: JobState
    renew_at: dt.datetime
    due_at: dt.datetime
    attempts: int = 0
    failures: int = 0
    last_error: str | None = None
    last_attempt_at: dt.datetime | None = None
    successor_id: int | None = None
    lease_owner: str | None = None
    lease_token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "certificate_id": self.certificate_id,
            "serial": self.serial,
            "state": self.state.value,
            "renew_at": iso(self.renew_at),
            "due_at": iso(self.due_at),
            "attempts": self.attempts,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_attempt_at": iso(self.last_attempt_at),
            "lease_owner": self.lease_owner,
        }


class RenewalJobRepository(Protocol):
    def next_page(self, after_id: int, limit: int) -> tuple[int, int]:
        """How many managed certificates without a job follow ``after_id`` (at most
        ``limit``), and the id of the last of them (0 when none)."""
        ...

    def begin_bulk_plan(self, min_rows: int) -> bool:
        """A first plan of a large inventory (no job yet, at least ``min_rows`` certificates
        waiting for one): set the store up to load the jobs in bulk and return True, to be
        undone by ``end_bulk_plan`` once they are in; otherwise undo what a load that never
        reached its end left set up, and return False. A store without such a mode returns
        False."""
        ...

    def end_bulk_plan(self) -> None:
        """Back to normal after ``begin_bulk_plan`` returned True."""
        ...

    def add_computed(self, after_id: int, upto_id: int, planned_at: dt.datetime) -> int:
        """Give the certificates with ids in (after, upto] that need only the renewal-time
        rule (no tags, ACME order or override) their scheduled jobs without reading them out
        of the database; return how many were inserted. A store that cannot returns 0 and
        leaves them to ``unplanned`` and ``add``."""
        ...

    def unplanned(self, after_id: int, limit: int, upto_id: int | None = None) -> Sequence[PlanCandidate]:
        """Active certificates certfleet's CA issued that have no job yet, by id, with ids in
        (after, upto] (one query, only the columns planning reads)."""
        ...

    def latest_certificate_id(self) -> int:
        """The highest certificate id so far (0 when none)."""
        ...

    def add(self, jobs: Sequence[NewJob], planned_at: dt.datetime) -> int:
        """Insert in one statement, ignoring certificates that got a job meanwhile (another
        planner); return how many were inserted."""
        ...

    def overridden(self, since: dt.datetime, limit: int) -> Sequence[tuple[RenewalJob, RenewalWindow]]:
        """Open jobs whose renewal time lies outside their ARI override window (the window
        was set or moved after they were planned), for windows ending after ``since``."""
        ...

    def reschedule(self, certificate_id: int, renew_at: dt.datetime, planned_at: dt.datetime) -> None:
        """Move a scheduled job's renewal (and due) time; a job in backoff keeps its due time
        when that is earlier."""
        ...

    def lease_due(self, now: dt.datetime, lease: Lease, limit: int) -> Sequence[RenewalJob]:
        """Lease up to ``limit`` open jobs due at ``now`` (expired leases included)."""
        ...

    def finish(
        self,
        certificate_id: int,
        token: str,
        state: JobState,
        at: dt.datetime,
        *,
        successor_id: int | None = None,
        reason: str | None = None,
    ) -> bool:
        """End the lease with a final state; False when the lease is no longer ours."""
        ...

    def retry(
        self, certificate_id: int, token: str, reason: str, due_at: dt.datetime, at: dt.datetime
    ) -> bool:
        """Record a failure and when to try again; False when the lease is no longer ours."""
        ...

    def get(self, certificate_id: int) -> RenewalJob | None: ...

    def counts(self) -> Mapping[str, int]:
        """Jobs per state."""
        ...

    def failing(self, limit: int) -> Sequence[RenewalJob]:
        """Jobs in backoff, the most failures first."""
        ...

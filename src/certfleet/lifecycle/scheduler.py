"""The periodic scheduler ``certfleet serve`` runs: every background job, on its interval.

A :class:`Job` is a name, an interval and a callable. Each tick runs the jobs that are due:

* an **exclusive** job (the default) first claims its named lease in the database
  (:class:`JobLeases`): the claim succeeds only when the job's next run is due and no live
  lease holds it, in one conditional write, so on several nodes sharing a PostgreSQL database
  exactly one of them runs the job per period; the next run time lives in the same row;
* a **per-node** job runs on every node on its own local schedule: its work is already leased
  row by row (renewal jobs) or is this process's own state. Its outcome is still recorded:
  a failure and the first success after one at once, other successes at most once every
  :data:`RECORD_EVERY` with the runs since counted in (the ``scans`` job runs every second in
  every serving worker; a write per round was most of an idle worker's CPU).

A job that raises is logged, its error, time and consecutive failures recorded in its row,
and it is retried with backoff: after one interval, then twice that, doubling up to
``max_backoff`` (or the interval when that is longer). One failing job never stops the
others. Time comes from the injected clock: tests call :meth:`Scheduler.tick` and move a
fake clock; :meth:`Scheduler.run` is the loop for a thread, ended by a ``threading.Event``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from certfleet.clock import Clock
from certfleet.errors import InvalidInput

__all__ = ["Job", "JobLeases", "JobState", "Scheduler", "retry_delay"]

_log = logging.getLogger("certfleet.scheduler")

# A claimed lease lasts two intervals and at least this long: a node killed mid-run frees
# the job after it. A run that outlasts its lease may overlap another node's next one; every
# job is safe under that (its rows are leased or its writes idempotent), it only costs work.
MIN_LEASE = dt.timedelta(seconds=60)
# A per-node job that keeps succeeding records its runs at most this often.
RECORD_EVERY = dt.timedelta(seconds=60)
# How long the loop waits at most between ticks: another node may have moved a due time.
MAX_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Job:
    """``run`` does one round of the job; ``per_node`` jobs skip the database lease;
    ``per_process`` jobs work on state held in the serving process's own memory, so with
    several serving workers each worker runs its own (see :meth:`Scheduler.restricted`)."""

    name: str
    interval: dt.timedelta
    run: Callable[[], object]
    per_node: bool = False
    per_process: bool = False

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 100:
            raise InvalidInput(f"bad job name {self.name!r}: 1 to 100 characters")
        if self.interval <= dt.timedelta(0):
            raise InvalidInput(f"job {self.name}: the interval must be positive")


@dataclass(frozen=True)
class JobState:
    """A job's row: when it runs next, who holds it, and how its last run went."""

    name: str
    next_run_at: dt.datetime
    lease_owner: str | None
    lease_until: dt.datetime | None
    last_started_at: dt.datetime | None
    last_finished_at: dt.datetime | None
    last_error: str | None
    last_error_at: dt.datetime | None
    failures: int
    runs: int


class JobLeases(Protocol):
    """The named-job leases the scheduler needs (the store implements them)."""

    def claim(self, name: str, owner: str, now: dt.datetime, until: dt.datetime) -> JobState | None:
        """Take the job's lease when its next run is due and no live lease holds it (the row
        is made, due now, on first use). The row as claimed, or None when not claimed."""
        ...

    def finish(
        self,
        name: str,
        owner: str | None,
        *,
        started_at: dt.datetime,
        now: dt.datetime,
        next_run_at: dt.datetime,
        error: str | None,
        runs: int = 1,
    ) -> JobState:
        """Record a run's outcome and the next run time, and release the lease (``owner``
        None: a per-node run, which holds none). A failure counts one more consecutive
        failure; a success clears the count. ``runs``: the runs this report stands for (a
        per-node job's successes since its last report). Returns the row as written."""
        ...

    def states(self) -> Sequence[JobState]: ...


def retry_delay(interval: dt.timedelta, failures: int, max_backoff: dt.timedelta) -> dt.timedelta:
    """The wait before the next try after ``failures`` consecutive failures: one interval,
    then doubling, up to ``max_backoff`` (or the interval itself when it is longer)."""
    exponent = min(max(failures - 1, 0), 30)
    return min(interval * (1 << exponent), max(interval, max_backoff))


class Scheduler:
    def __init__(
        self,
        leases: JobLeases,
        clock: Clock,
        jobs: Sequence[Job],
        *,
        owner: str | None = None,
        max_backoff: dt.timedelta = dt.timedelta(minutes=5),
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise InvalidInput(f"job names must be unique: {names}")
        self._leases = leases
        self._clock = clock
        self.jobs = tuple(jobs)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.max_backoff = max_backoff
        # Per-node jobs, and what this node last saw of exclusive ones: when to look again.
        self._next_local: dict[str, dt.datetime] = {}
        self._failures: dict[str, int] = {}
        # Per-node jobs: when this scheduler last recorded each, and its runs since.
        self._recorded_at: dict[str, dt.datetime] = {}
        self._unrecorded: dict[str, int] = {}

    def restricted(self, keep: Callable[[Job], bool]) -> Scheduler:
        """A scheduler over the same leases and clock that runs only the jobs ``keep``
        accepts (``serve --workers``: the node's jobs in one worker, per-process ones in
        every worker)."""
        return Scheduler(
            self._leases,
            self._clock,
            [job for job in self.jobs if keep(job)],
            owner=self.owner,
            max_backoff=self.max_backoff,
        )

    def tick(self) -> list[str]:
        """Run every job due now, in order; return the names of those this node ran."""
        ran = []
        for job in self.jobs:
            now = self._clock.now()
            if now < self._next_local.get(job.name, now):
                continue
            if job.per_node:
                self._run(job, None, now, self._failures.get(job.name, 0))
                ran.append(job.name)
                continue
            until = now + max(MIN_LEASE, job.interval * 2)
            try:
                claimed = self._leases.claim(job.name, self.owner, now, until)
            except Exception as exc:  # noqa: BLE001 - the outermost job handler: the database may be down
                _log.error("job %s: cannot claim its lease: %s: %s", job.name, type(exc).__name__, exc)
                self._next_local[job.name] = now + job.interval
                continue
            if claimed is not None:
                self._run(job, self.owner, now, claimed.failures)
                ran.append(job.name)
            else:  # another node holds it or ran it this period: look again in an interval
                self._next_local[job.name] = now + min(job.interval, dt.timedelta(seconds=MAX_WAIT_SECONDS))
        return ran

    def _run(self, job: Job, owner: str | None, started_at: dt.datetime, failed_before: int) -> None:
        error: str | None = None
        try:
            job.run()
        except Exception as exc:  # noqa: BLE001 - the outermost job handler: record, log, retry
            error = f"{type(exc).__name__}: {exc}"
        now = self._clock.now()
        failures = failed_before + 1 if error else 0
        if error is None:
            next_run_at = started_at + job.interval
        else:
            next_run_at = now + retry_delay(job.interval, failures, self.max_backoff)
            _log.error("job %s failed (%d in a row, next try %s): %s", job.name, failures, next_run_at, error)
        self._failures[job.name] = failures
        self._next_local[job.name] = next_run_at
        runs = self._unrecorded.pop(job.name, 0) + 1
        if owner is None and failures == 0 == failed_before:
            # A per-node success after a success: the row changes only by its counters and
            # times, nothing another node acts on; record it once in a while.
            recorded_at = self._recorded_at.get(job.name)
            if recorded_at is not None and now - recorded_at < RECORD_EVERY:
                self._unrecorded[job.name] = runs
                return
            self._recorded_at[job.name] = now
        try:
            self._leases.finish(
                job.name,
                owner,
                started_at=started_at,
                now=now,
                next_run_at=next_run_at,
                error=error,
                runs=runs,
            )
        except Exception as exc:  # noqa: BLE001 - the lease expires on its own; the next tick retries
            _log.error("job %s: cannot record its run: %s: %s", job.name, type(exc).__name__, exc)

    def states(self) -> Sequence[JobState]:
        """Every job's row: next run, lease, last error and consecutive failures."""
        return self._leases.states()

    def seconds_until_due(self) -> float:
        """How long the loop may wait before the next tick has something to do."""
        now = self._clock.now()
        waits = [(self._next_local.get(job.name, now) - now).total_seconds() for job in self.jobs]
        return max(0.0, min([MAX_WAIT_SECONDS, *waits]))

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set (the loop of ``serve``'s scheduler thread)."""
        _log.info("scheduler %s: %s", self.owner, ", ".join(job.name for job in self.jobs) or "no jobs")
        while not stop.is_set():
            self.tick()
            stop.wait(self.seconds_until_due())

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Run the loop in a thread of its own for the ``with`` block (``serve`` wraps its
        listeners in it): jobs block on the database and on receivers, an event loop never
        does. On exit a job running now finishes (and records itself) before this returns."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="certfleet-scheduler")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

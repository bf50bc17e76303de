"""Group commit: requests that arrive together share one transaction.

Callers :meth:`GroupCommitter.submit` an item and block until it is committed. The first
caller to find no commit in progress becomes the leader: it takes everything queued (its own
item included) and commits it in one call, then wakes the others; whoever is still waiting
takes the lead for what queued meanwhile. A lone caller commits at once: there is no timer, so
batching costs no latency, it only happens when callers would otherwise queue on the
database's write lock anyway.

A batch that fails is retried one item at a time, so one bad item (a duplicate, a constraint
it breaks) gives its own caller its own error and never loses or fails the others. An error
that no item caused (the database unreachable or locked by another process: ``isolate`` says
which) fails the whole batch at once: retried item by item, each would wait out the same
outage again, and a batch of N callers would wait N+1 times as long for the same answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommitter"]

_T = TypeVar("_T")
_R = TypeVar("_R")


class _Slot(Generic[_T, _R]):
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: _T) -> None:
        self.item = item
        self.done = False
        self.result: _R | None = None
        self.error: BaseException | None = None


class GroupCommitter(Generic[_T, _R]):
    """``commit`` takes a batch and returns one result per item, in order, or raises for the
    whole batch (its transaction rolled back)."""

    def __init__(
        self,
        commit: Callable[[Sequence[_T]], Sequence[_R]],
        *,
        max_batch: int = 256,
        isolate: Callable[[BaseException], bool] = lambda error: True,
    ) -> None:
        self._commit = commit
        self._isolate = isolate
        self._max_batch = max_batch
        self._condition = threading.Condition()
        self._queue: list[_Slot[_T, _R]] = []
        self._leading = False
        self.batches = 0  # transactions committed or attempted (observable by tests and benches)

    @property
    def pending(self) -> int:
        """Items queued behind the commit in progress."""
        with self._condition:
            return len(self._queue)

    def submit(self, item: _T) -> _R:
        slot: _Slot[_T, _R] = _Slot(item)
        with self._condition:
            self._queue.append(slot)
            while not slot.done:
                if self._leading:
                    self._condition.wait()
                    continue
                # No commit in progress and ours is not done, so it is still queued: lead.
                self._leading = True
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self._condition.release()
                try:
                    self._run(batch)
                finally:
                    self._condition.acquire()
                    self._leading = False
                    self._condition.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # set with done when error is None

    def _run(self, batch: list[_Slot[_T, _R]]) -> None:
        try:
            self._attempt(batch)
        except BaseException as exc:  # noqa: BLE001  # delivered to the callers, never lost
            if len(batch) == 1 or not self._isolate(exc):
                for slot in batch:
                    slot.error = exc
            else:
                for slot in batch:  # isolate the culprit: each item alone, its own error
                    try:
                        self._attempt([slot])
                    except BaseException as single:  # noqa: BLE001
                        slot.error = single
        finally:
            for slot in batch:
                slot.done = True

    def _attempt(self, batch: list[_Slot[_T, _R]]) -> None:
        self.batches += 1
        results = self._commit([slot.item for slot in batch])
        if len(results) != len(batch):
            raise RuntimeError(f"a batch of {len(batch)} returned {len(results)} results")
        for slot, result in zip(batch, results, strict=True):
            slot.result = result

"""Signed OCSP answers kept in the worker's memory, each valid for one revocation generation."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from certfleet.revocation._published import Published

__all__ = ["MEMORY_ENTRIES", "AnswerMemory"]

MEMORY_ENTRIES = 10_000
"""Answers kept per worker: a response with a delegated responder certificate is about
800 bytes, so the cache stays under about 10 MiB however many distinct requests arrive; a
fleet larger than that still has every answer it was asked for signed in the database."""


@dataclass(frozen=True, slots=True)
class _Entry:
    generation: int
    fresh_until: dt.datetime
    published: Published


class AnswerMemory:
    """Published answers by the exact DER of the request they answer.

    Keyed by the request bytes, a hit costs one dictionary look-up: no parsing, no issuer
    match, no database. Only nonce-less requests are remembered (a nonce makes every request
    unique, RFC 8954), and never an ``unknown`` answer. An entry serves only while the
    revocation generation is the one it was built at and until its refresh time; entries
    carry their generation, so one stored by a slow request that began before a revocation
    is never served after it, whatever the order of threads.
    """

    def __init__(self, capacity: int = MEMORY_ENTRIES) -> None:
        self._capacity = capacity
        self._entries: dict[bytes, _Entry] = {}
        self._generation: int | None = None
        self._lock = threading.Lock()  # writers only; look-ups are single dict reads

    def observe(self, generation: int) -> bool:
        """Record the generation just read; True (and the memory emptied) when it changed."""
        if generation == self._generation:
            return False
        with self._lock:
            self._generation = generation
            self._entries = {}
        return True

    def get(self, request_der: bytes, generation: int, now: dt.datetime) -> Published | None:
        entry = self._entries.get(request_der)
        if entry is None or entry.generation != generation or now >= entry.fresh_until:
            return None
        return entry.published

    def put(self, request_der: bytes, generation: int, published: Published) -> None:
        if published.refresh_at is None or published.next_update is None:
            return
        entry = _Entry(generation, min(published.refresh_at, published.next_update), published)
        with self._lock:
            entries = self._entries
            if len(entries) >= self._capacity and request_der not in entries:
                del entries[next(iter(entries))]  # the oldest: dicts keep insertion order
            entries[request_der] = entry

    def __len__(self) -> int:
        return len(self._entries)

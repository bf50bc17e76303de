"""Run one piece of work on several threads released together by a barrier: the shape of
the store's concurrency tests (two serving processes, many request threads)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Together", "run_together"]

T = TypeVar("T")


@dataclass
class Together(Generic[T]):
    """The results of the threads (in the order they finished) and their thread idents."""

    results: list[T] = field(default_factory=list)
    idents: set[int] = field(default_factory=set)


def run_together(count: int, work: Callable[[], T]) -> Together[T]:
    """``work`` once on each of ``count`` threads that wait at one barrier and are then
    released together, so their first statements race."""
    start = threading.Barrier(count)
    lock = threading.Lock()
    done: Together[T] = Together()

    def run() -> None:
        start.wait()
        result = work()
        with lock:
            done.results.append(result)
            done.idents.add(threading.get_ident())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done

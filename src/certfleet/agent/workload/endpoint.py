"""The agent's Workload API endpoint: the SVID cache, the gRPC service and the attesting
socket in front of it, on one event loop in a thread of its own (the renewal loop of the
agent keeps the main thread).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import shutil
import tempfile
import threading
from pathlib import Path

import grpc

from certfleet.agent.workload.cache import SvidCache
from certfleet.agent.workload.front import AttestingFront
from certfleet.agent.workload.service import WorkloadApi
from certfleet.agent.workload.source import SvidSource
from certfleet.clock import Clock

__all__ = ["DEFAULT_SYNC_INTERVAL", "WorkloadEndpoint"]

# SPIRE's agent syncs its entries every 5 s; a new entry reaches its workload that soon.
DEFAULT_SYNC_INTERVAL = dt.timedelta(seconds=5)
_log = logging.getLogger("certfleet.agent.workload")


class WorkloadEndpoint:
    """``start()`` returns once the socket accepts calls; ``background=False`` leaves the
    refreshes to :meth:`refresh_now` (tests drive a fake clock that way)."""

    def __init__(
        self,
        socket_path: Path,
        source: SvidSource,
        clock: Clock,
        *,
        trust_domain: str | None = None,
        sync_interval: dt.timedelta = DEFAULT_SYNC_INTERVAL,
        background: bool = True,
    ) -> None:
        self._trust_domain = trust_domain
        self.socket_path = socket_path
        self._source = source
        self._clock = clock
        self._interval = sync_interval
        self._background = background
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self.cache: SvidCache | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="workload-api", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        if self._thread is None or self._stopping is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self._thread = None

    def refresh_now(self, timeout_seconds: float = 60.0) -> None:
        """One refresh pass on the endpoint's loop; returns when it is done."""
        assert self.cache is not None
        future = asyncio.run_coroutine_threadsafe(self.cache.refresh(), self._loop)
        future.result(timeout_seconds)

    def wait_issued(self, count: int, timeout_seconds: float) -> bool:
        """Wait until the cache holds ``count`` SVIDs (the benchmark's measure)."""

        async def wait() -> None:
            assert self.cache is not None
            while len(self.cache) < count:
                await self.cache.changed().wait()

        future = asyncio.run_coroutine_threadsafe(wait(), self._loop)
        try:
            future.result(timeout_seconds)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return False
        return True

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except Exception as exc:  # noqa: BLE001 - the thread's outermost handler: start() re-raises it
            self._failure = exc
            _log.error("the Workload API stopped: %s", exc)
        finally:
            self._ready.set()
            self._loop.close()

    async def _serve(self) -> None:
        self._stopping, self._wake = asyncio.Event(), asyncio.Event()
        private = Path(tempfile.mkdtemp(prefix="certfleet-workload-"))  # 0700: the agent's alone
        backend = private / "grpc.sock"
        self.cache = SvidCache(self._source, self._clock, self._trust_domain)
        front = AttestingFront(self.socket_path, backend)
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((WorkloadApi(self.cache, front).handler(),))
        server.add_insecure_port(f"unix:{backend}")
        await server.start()
        try:
            # Synced before listening: a workload that connects at once finds its entry (SPIRE's
            # agent, too, serves only once it has synced). A server that is down leaves the
            # cache empty, and the background passes fill it.
            await self.cache.refresh()
            await front.start()
            syncing = asyncio.create_task(self._sync()) if self._background else None
            _log.info("Workload API listening on %s", self.socket_path)
            self._ready.set()
            await self._stopping.wait()
            if syncing is not None:
                syncing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await syncing
        finally:
            await front.stop()
            await server.stop(grace=1.0)
            shutil.rmtree(private, ignore_errors=True)

    async def _sync(self) -> None:
        assert self.cache is not None and self._wake is not None
        while True:
            due = self.cache.next_due(self._interval) - self._clock.now()
            # Never busier than twice a second, whatever the clock says.
            delay = min(max(due.total_seconds(), 0.5), self._interval.total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            await self.cache.refresh()

"""Scan jobs: the queue the REST API and the dashboard submit to, and the runner that takes
a scan to its end. Whatever goes wrong, the run ends ``failed`` with the reason, never
``pending`` or ``running`` for ever.

The scheduler's per-node ``scans`` job starts what is queued (see
:mod:`certfleet.services.background_jobs`). The queue is in this process's memory on purpose:
a file scan carries keystore passwords that are never stored, so the node that accepted a scan
is the one that runs it. Each scan runs in a worker thread of its own: a scan of a /16 must not
hold renewals and notifications behind it."""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from certfleet.discovery.requests import FileScanRequest, NetScanRequest
from certfleet.errors import CertfleetError

__all__ = ["ScanJobRunner", "ScanQueue", "ScanRunner"]

_log = logging.getLogger("certfleet.discovery")


class ScanRunner(Protocol):
    """What the runner calls on the discovery service."""

    def scan_network(self, request: NetScanRequest, *, actor: str, run_id: str | None = None) -> object: ...

    def scan_files(self, request: FileScanRequest, *, actor: str, run_id: str | None = None) -> object: ...

    def fail(self, run_id: str, error: str) -> None: ...


class ScanJobRunner:
    def __init__(self, discovery: ScanRunner) -> None:
        self._discovery = discovery

    def run(self, run_id: str, request: NetScanRequest | FileScanRequest, actor: str) -> None:
        """Run the scan recorded as ``run_id`` (by ``DiscoveryService.submit``). The
        outermost handler of a background job: it never raises."""
        try:
            if isinstance(request, NetScanRequest):
                self._discovery.scan_network(request, actor=actor, run_id=run_id)
            else:
                self._discovery.scan_files(request, actor=actor, run_id=run_id)
        except CertfleetError as exc:
            self._fail(run_id, exc.detail)
        except Exception as exc:  # noqa: BLE001 - the outermost job handler
            _log.error("scan %s failed: %s: %s", run_id, type(exc).__name__, exc)
            self._fail(run_id, f"{type(exc).__name__}: {exc}")

    def _fail(self, run_id: str, error: str) -> None:
        try:
            self._discovery.fail(run_id, error)
        except Exception as exc:  # noqa: BLE001 - e.g. the database is gone: log, do not raise
            _log.error("scan %s: cannot record its failure: %s: %s", run_id, type(exc).__name__, exc)


class ScanQueue:
    """Scans submitted to this node, waiting for the scheduler's ``scans`` job."""

    def __init__(self, runner: ScanJobRunner, *, workers: int = 4) -> None:
        self._runner = runner
        self._waiting: deque[tuple[str, NetScanRequest | FileScanRequest, str]] = deque()
        self._lock = threading.Lock()
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, run_id: str, request: NetScanRequest | FileScanRequest, actor: str) -> None:
        """Queue the scan recorded as ``run_id`` (by ``DiscoveryService.submit``)."""
        self._waiting.append((run_id, request, actor))

    def run_pending(self, *, wait: bool = False) -> int:
        """Start every queued scan in a worker thread (the ``scans`` job); with ``wait``,
        return only when they have ended. Returns how many were started."""
        started: list[Future[None]] = []
        while self._waiting:
            run_id, request, actor = self._waiting.popleft()
            started.append(self._executor().submit(self._runner.run, run_id, request, actor))
        if wait:
            for future in started:
                future.result()
        return len(started)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="certfleet-scan")
            return self._pool

    def close(self) -> None:
        """Wait for running scans to end; what was never started stays pending."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

"""The scan-job runner: runs a submitted scan to its end, the one copy the REST API and the
dashboard both use. Whatever goes wrong, the run ends ``failed`` with the reason, never
``pending`` or ``running`` for ever."""

from __future__ import annotations

import logging
from typing import Protocol

from certfleet.discovery.requests import FileScanRequest, NetScanRequest
from certfleet.errors import CertfleetError

__all__ = ["ScanJobRunner", "ScanRunner"]

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

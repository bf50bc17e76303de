"""The scanner's bounds and failure handling, with a hand-written probe in place of TLS."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from certfleet.discovery import (
    BadTarget,
    Endpoint,
    EndpointOutcome,
    FileOutcome,
    NetScanOptions,
    NetStatus,
    NetworkScanner,
    TlsObservation,
)
from certfleet.discovery.probes import ProbeFailure


class FakeProbe:
    """Counts connections in flight, overall and per host; fails or raises on request."""

    def __init__(self) -> None:
        self.in_flight: Counter[str] = Counter()
        self.peak_total = 0
        self.peak_host: Counter[str] = Counter()
        self.release = asyncio.Event()

    async def __call__(
        self, endpoint: Endpoint, *, timeout_seconds: float, http_checks: bool
    ) -> TlsObservation:
        self.in_flight[endpoint.host] += 1
        self.peak_total = max(self.peak_total, sum(self.in_flight.values()))
        self.peak_host[endpoint.host] = max(self.peak_host[endpoint.host], self.in_flight[endpoint.host])
        try:
            await asyncio.sleep(0)  # yield so that every task the bounds allow gets started
            await asyncio.sleep(0)
            if endpoint.port == 1:
                raise ProbeFailure(NetStatus.REFUSED, "connection refused")
            if endpoint.port == 2:
                raise RuntimeError("a bug in a probe")
            raise ProbeFailure(NetStatus.TIMEOUT, "timed out")
        finally:
            self.in_flight[endpoint.host] -= 1


def _run(options: NetScanOptions, endpoints: list[Endpoint]) -> tuple[FakeProbe, list[EndpointOutcome]]:
    probe = FakeProbe()
    outcomes = NetworkScanner(options, tls_probe=probe).run(endpoints)
    return probe, outcomes


def test_global_and_per_host_bounds() -> None:
    endpoints = [Endpoint(f"192.0.2.{h}", 1000 + p) for p in range(10) for h in range(1, 21)]
    probe, outcomes = _run(NetScanOptions(concurrency=50, per_host=3), endpoints)
    assert len(outcomes) == 200
    assert probe.peak_total == 50
    assert max(probe.peak_host.values()) == 3
    assert [o.endpoint for o in outcomes] == endpoints  # results keep the input order


def test_every_endpoint_runs_at_once_when_allowed() -> None:
    endpoints = [Endpoint(f"10.0.0.{h}", 443) for h in range(1, 255)]
    probe, _ = _run(NetScanOptions(concurrency=500), endpoints)
    assert probe.peak_total == 254


def test_failures_and_bugs_are_outcomes() -> None:
    _, outcomes = _run(
        NetScanOptions(), [Endpoint("192.0.2.1", 1), Endpoint("192.0.2.1", 2), Endpoint("192.0.2.1", 3)]
    )
    assert [(o.status, o.reason) for o in outcomes] == [
        (NetStatus.REFUSED, "connection refused"),
        (NetStatus.ERROR, "internal error: RuntimeError: a bug in a probe"),
        (NetStatus.TIMEOUT, "timed out"),
    ]


def test_observer_sees_each_endpoint() -> None:
    seen: list[str] = []

    class Observer:
        def on_start(self, total: int | None) -> None:
            seen.append(f"start {total}")

        def on_target_start(self, target: str) -> None:
            seen.append(f"begin {target}")

        def on_outcome(self, outcome: EndpointOutcome | FileOutcome) -> None:
            seen.append(f"end {outcome.location}")

    NetworkScanner(NetScanOptions(), tls_probe=FakeProbe()).run([Endpoint("192.0.2.1", 3)], Observer())
    assert seen == ["start 1", "begin 192.0.2.1:3", "end 192.0.2.1:3"]


@pytest.mark.parametrize(
    "options",
    [
        {"timeout_seconds": 0},
        {"timeout_seconds": 301},
        {"concurrency": 0},
        {"per_host": 0},
        {"http_port": 70000},
    ],
)
def test_options_are_checked(options: dict[str, float]) -> None:
    with pytest.raises(BadTarget):
        NetScanOptions(**options)  # type: ignore[arg-type]

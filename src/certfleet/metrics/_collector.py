"""Gauges and counters computed from the database when Prometheus scrapes: nothing in the
services is instrumented, so a metric can never disagree with what the dashboard shows.

Counters of issuance, revocation and renewal come from the audit log: it is append-only and
every such event writes one entry in the same transaction, so the totals are exact, survive
restarts, and each scrape reads only the entries added since the previous one.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from certfleet.ca import CaCertificate
from certfleet.clock import Clock
from certfleet.inventory.crypto import classify_key, classify_signature
from certfleet.metrics._ports import InventorySnapshot, MetricsQueries

__all__ = ["ACTION_OUTCOMES", "AuditCounters", "FleetCollector"]

EXPIRY_WINDOWS = (7, 30)
SCAN_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))
# Audit actions that count as an operation's outcome: (operation, outcome).
ACTION_OUTCOMES: dict[str, tuple[str, str]] = {
    "certificate.issued": ("issuance", "success"),
    "certificate.refused": ("issuance", "failure"),
    "certificate.revoked": ("revocation", "success"),
    "certificate.renewed": ("renewal", "success"),
    "renewal.failed": ("renewal", "failure"),
}
OPERATIONS = ("issuance", "revocation", "renewal")


class AuditCounters:
    """Entries per action, read incrementally from the audit log (thread-safe)."""

    def __init__(self, queries: MetricsQueries) -> None:
        self._queries = queries
        self._lock = threading.Lock()
        self._last_seq = 0
        self._counts: dict[str, int] = defaultdict(int)

    def totals(self) -> dict[str, int]:
        with self._lock:
            last, rows = self._queries.audit_actions(self._last_seq)
            for action, count in rows:
                self._counts[action] += count
            self._last_seq = last
            return dict(self._counts)


class _SnapshotCache:
    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._entries: dict[str | None, tuple[float, InventorySnapshot]] = {}

    def get(self, team: str | None, load: Callable[[], InventorySnapshot]) -> InventorySnapshot:
        with self._lock:
            cached = self._entries.get(team)
            if cached is not None and time.monotonic() - cached[0] < self._ttl:
                return cached[1]
        snapshot = load()
        with self._lock:
            self._entries[team] = (time.monotonic(), snapshot)
        return snapshot


class FleetCollector(Collector):
    """Everything read from the database for one scrape; ``team`` narrows team-owned data."""

    def __init__(
        self,
        queries: MetricsQueries,
        audit: AuditCounters,
        hierarchy: Callable[[], Sequence[CaCertificate]],
        clock: Clock,
        cache_seconds: float,
    ) -> None:
        self._queries = queries
        self._audit = audit
        self._hierarchy = hierarchy
        self._clock = clock
        self._cache = _SnapshotCache(cache_seconds)

    def collect(self) -> Iterable[Metric]:
        return self.collect_for(None)

    def collect_for(self, team: str | None) -> Iterable[Metric]:
        now = self._clock.now()
        cas = list(self._hierarchy())
        snap = self._cache.get(
            team, lambda: self._queries.snapshot(now, team, EXPIRY_WINDOWS, [ca.id for ca in cas])
        )
        yield from self._inventory(snap)
        yield self._algorithms(snap)
        yield from self._authorities(snap, cas, now)
        yield from self._discovery(snap)
        yield from self._operations()

    @staticmethod
    def _inventory(snap: InventorySnapshot) -> Iterable[Metric]:
        certs = GaugeMetricFamily(
            "certfleet_certificates",
            "Certificates in the inventory by effective status, issuer DN and team",
            labels=["status", "issuer", "team"],
        )
        for status, issuer, team, count in snap.certificates:
            certs.add_metric([status, issuer, team], count)
        yield certs
        expiring = GaugeMetricFamily(
            "certfleet_certificates_expiring",
            "Active certificates whose notAfter is within the given number of days",
            labels=["team", "within_days"],
        )
        for team, days, count in snap.expiring:
            expiring.add_metric([team, str(days)], count)
        yield expiring

    @staticmethod
    def _algorithms(snap: InventorySnapshot) -> Metric:
        """In-use certificates per key algorithm (``rsa-2048``, ``ml-dsa-65``) and whether a
        quantum computer breaks it (key or signature: ``yes``, ``no``, ``unknown``)."""
        family = GaugeMetricFamily(
            "certfleet_certificates_by_algorithm",
            "In-use certificates by key algorithm and quantum vulnerability (key or signature)",
            labels=["algorithm", "quantum_vulnerable"],
        )
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for key_algorithm, key_size, signature, count in snap.algorithms:
            key = classify_key(key_algorithm, key_size)
            vulnerable = key.quantum_vulnerable or classify_signature(signature).quantum_vulnerable
            counts[(key.label, {True: "yes", False: "no", None: "unknown"}[vulnerable])] += count
        for labels, count in sorted(counts.items()):
            family.add_metric(list(labels), count)
        return family

    @staticmethod
    def _authorities(snap: InventorySnapshot, cas: list[CaCertificate], now: dt.datetime) -> Iterable[Metric]:
        ca_expiry = GaugeMetricFamily(
            "certfleet_ca_certificate_expiry_seconds",
            "Seconds until the CA certificate itself expires (negative once expired)",
            labels=["ca_id", "ca_name", "role"],
        )
        earliest = GaugeMetricFamily(
            "certfleet_ca_earliest_expiry_seconds",
            "Seconds until the earliest notAfter among the CA's active certificates",
            labels=["ca_id", "ca_name"],
        )
        oldest = GaugeMetricFamily(
            "certfleet_ocsp_oldest_response_age_seconds",
            "Age of the CA's oldest pre-signed OCSP response (thisUpdate to now)",
            labels=["ca_id"],
        )
        for ca in cas:
            ca_expiry.add_metric([ca.id, ca.name, ca.role], (ca.not_after - now).total_seconds())
            if ca.id in snap.earliest_expiry:
                earliest.add_metric([ca.id, ca.name], (snap.earliest_expiry[ca.id] - now).total_seconds())
            if ca.id in snap.oldest_ocsp:
                oldest.add_metric([ca.id], (now - snap.oldest_ocsp[ca.id]).total_seconds())
        crl = GaugeMetricFamily(
            "certfleet_crl_next_update_seconds",
            "Seconds until the CA's published CRL reaches nextUpdate (negative when stale)",
            labels=["ca_id", "kind"],
        )
        for ca_id, kind, _, next_update in snap.crls:
            crl.add_metric([ca_id, kind], (next_update - now).total_seconds())
        yield from (ca_expiry, earliest, crl, oldest)

    @staticmethod
    def _discovery(snap: InventorySnapshot) -> Iterable[Metric]:
        findings = GaugeMetricFamily(
            "certfleet_findings_open",
            "Open discovery findings by severity and code",
            labels=["severity", "code"],
        )
        for severity, code, count in snap.findings:
            findings.add_metric([severity, code], count)
        runs = GaugeMetricFamily(
            "certfleet_scan_runs", "Scan runs by kind and status", labels=["kind", "status"]
        )
        for kind, status, count in snap.scan_runs:
            runs.add_metric([kind, status], count)
        durations = HistogramMetricFamily(
            "certfleet_scan_duration_seconds", "Wall time of finished scans", labels=["kind"]
        )
        by_kind: dict[str, list[float]] = defaultdict(list)
        for kind, seconds in snap.scan_durations:
            by_kind[kind].append(seconds)
        for kind, values in sorted(by_kind.items()):
            buckets = [(_le(b), sum(1 for v in values if v <= b)) for b in SCAN_BUCKETS]
            durations.add_metric([kind], buckets, sum(values))
        yield from (findings, runs, durations)

    def _operations(self) -> Iterable[Metric]:
        totals = self._audit.totals()
        counted: dict[tuple[str, str], int] = defaultdict(int)
        for action, count in totals.items():
            if action in ACTION_OUTCOMES:
                counted[ACTION_OUTCOMES[action]] += count
        for operation in OPERATIONS:
            family = CounterMetricFamily(
                f"certfleet_{operation}", f"Certificate {operation} operations by outcome", labels=["outcome"]
            )
            for outcome in ("success", "failure"):
                family.add_metric([outcome], counted[(operation, outcome)])
            yield family
        failures = CounterMetricFamily("certfleet_renewal_failures", "Renewal attempts that failed")
        failures.add_metric([], counted[("renewal", "failure")])
        yield failures


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)

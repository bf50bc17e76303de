"""A shortened soak (bench/soak.py, ten minutes in full): two ``certfleet serve`` nodes on one
PostgreSQL under sustained mixed load for 45 seconds (REST issuance, OCSP GET and POST by wrk,
ACME through certbot's ``acme`` library, inventory queries). Not one 5xx or failed exchange,
every kind of request served, and each node's memory flat: its RSS at the end is within a
bound of its RSS after the warm-up that a leak of even a few kilobytes per request breaks."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SOAK_SECONDS = 45
# Generous against allocator noise, tight against a leak: tens of thousands of requests are
# served after the warm-up, so a leak of 2 KiB per request would already exceed it.
RSS_GROWTH_BOUND_KIB = 48 * 1024

_spec = importlib.util.spec_from_file_location(
    "bench_soak", Path(__file__).resolve().parents[2] / "bench" / "soak.py"
)
assert _spec is not None and _spec.loader is not None
soak = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = soak
_spec.loader.exec_module(soak)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (scripts/debian-packages.txt)")
def test_two_nodes_under_sustained_mixed_load_serve_without_errors_and_flat_memory(tmp_path: Path) -> None:
    report = soak.run(SOAK_SECONDS, tmp_path)
    print("\n".join(report.lines()))
    # Then nothing failed
    for tally in report.tallies:
        assert not tally.errors, f"{tally.kind}: {tally.errors[:3]}"
    for result in report.wrk:
        assert result.errors == 0, f"{result.kind}: {result.errors} errors"
    # Every kind of request was served
    assert all(t.latencies for t in report.tallies), [(t.kind, t.requests) for t in report.tallies]
    assert all(w.requests > 0 for w in report.wrk)
    # And memory stayed flat on both nodes
    served = sum(t.requests for t in report.tallies) + sum(w.requests for w in report.wrk)
    for start, end in zip(report.rss_start_kib, report.rss_end_kib, strict=True):
        assert end - start < RSS_GROWTH_BOUND_KIB, f"RSS grew {start} -> {end} KiB over {served} requests"

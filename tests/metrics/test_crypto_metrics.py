"""``certfleet_certificates_by_algorithm``: in-use certificates per key algorithm and quantum
vulnerability, from one grouped query at scrape time, narrowed for a team token."""

from __future__ import annotations

from pathlib import Path

from certfleet.app import Platform
from tests.metrics.test_metrics_endpoint import scrape, total, value
from tests.services.crypto_fleet import mixed_fleet
from tests.web.conftest import Browser, token

GAUGE = "certfleet_certificates_by_algorithm"


def test_the_gauge_counts_certificates_per_algorithm(
    browser: Browser, platform: Platform, tmp_path: Path
) -> None:
    mixed_fleet(platform, tmp_path)
    samples = scrape(browser, token(platform))
    assert value(samples, GAUGE, algorithm="rsa-2048", quantum_vulnerable="yes") == 1
    assert value(samples, GAUGE, algorithm="rsa-1024", quantum_vulnerable="yes") == 1
    assert value(samples, GAUGE, algorithm="ml-dsa-65", quantum_vulnerable="no") == 1
    assert value(samples, GAUGE, algorithm="ed25519", quantum_vulnerable="yes") == 1
    # P-256: the issued leaf, the discovered SHA-1 leaf and its intermediate
    assert value(samples, GAUGE, algorithm="ec-p256", quantum_vulnerable="yes") == 3
    assert total(samples, GAUGE) == 7
    team = scrape(browser, token(platform, "pq", "read"))
    assert total(team, GAUGE) == 2
    assert value(team, GAUGE, algorithm="ml-dsa-65", quantum_vulnerable="no") == 1

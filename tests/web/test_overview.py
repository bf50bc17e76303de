"""The overview's numbers against the seeded inventory, the month link, the timeline's bars
and their links, findings by severity, CA health, and the audit log with its verdict."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text

from certfleet.app import Platform
from certfleet.inventory import CertificateRecord, Status
from certfleet.services.discovery import FileScanRequest
from certfleet.web._overview import month_window
from certfleet.web._timeline import WEEKS, week_start
from tests.web.conftest import Browser, issue
from tests.web.test_inventory import synthetic

_TILE = re.compile(r'data-testid="([a-z0-9-]+)">\s*<span class="tile-value">(\d+)<')
_BAR = re.compile(r'<a href="([^"]+)" class="bar" data-week="[^"]+" data-count="(\d+)"')
_MATCHES = re.compile(r'data-testid="match-count">(\d+)<')


@pytest.fixture
def seeded(platform: Platform) -> list[CertificateRecord]:
    now = platform.clock.now()
    records = [issue(platform, f"d{days}.example.test", days=days) for days in (3, 10, 20, 45, 80, 200)]
    records += [issue(platform, "web.example.test", days=15, team="web")]
    records += synthetic(platform, 2, start=now + dt.timedelta(days=4), status=Status.REVOKED)
    records += synthetic(platform, 3, start=now - dt.timedelta(days=60), names=["a.old", "b.old", "c.old"])
    return records


def _tiles(page: str) -> dict[str, int]:
    return {name: int(value) for name, value in _TILE.findall(page)}


def _matches(browser: Browser, href: str) -> int:
    page = browser.get(html.unescape(href))
    assert page.status_code == 200, page.text
    return int(_MATCHES.search(page.text).group(1))  # type: ignore[union-attr]


def test_overview_numbers_match_the_inventory(
    admin_browser: Browser, platform: Platform, seeded: list[CertificateRecord]
) -> None:
    now = platform.clock.now()
    tiles = _tiles(admin_browser.get("/").text)
    assert tiles["status-total"] == len(seeded)
    for status in Status:
        assert tiles[f"status-{status.value}"] == sum(1 for r in seeded if r.effective_status(now) is status)
    for days in (7, 30, 90):
        expected = sum(
            1
            for r in seeded
            if r.effective_status(now) is Status.ACTIVE and r.not_after <= now + dt.timedelta(days=days)
        )
        assert tiles[f"expiring-{days}"] == expected
        assert _matches(admin_browser, f"/certificates?expiring={days}") == expected


def test_the_month_tile_links_to_exactly_this_months_certificates(
    admin_browser: Browser, platform: Platform, seeded: list[CertificateRecord]
) -> None:
    start, end = month_window(platform.clock.now())
    expected = sum(1 for r in seeded if start <= r.not_after < end)
    page = admin_browser.get("/").text
    assert int(re.search(r'data-testid="month-count">(\d+)<', page).group(1)) == expected  # type: ignore[union-attr]
    href = re.search(r'<a href="([^"]+)" data-testid="month-link">', page).group(1)  # type: ignore[union-attr]
    assert _matches(admin_browser, href) == expected


def test_timeline_bars_count_and_link_to_their_week(
    admin_browser: Browser, platform: Platform, seeded: list[CertificateRecord]
) -> None:
    now = platform.clock.now()
    end = week_start(now) + dt.timedelta(weeks=WEEKS)
    page = admin_browser.get("/timeline?group=team").text
    bars = [(href, int(count)) for href, count in _BAR.findall(page)]
    active = [r for r in seeded if r.effective_status(now) is Status.ACTIVE and r.not_after < end]
    assert sum(count for _, count in bars) == len(active)
    for href, count in bars:
        assert _matches(admin_browser, href) == count
    assert "<svg" in page and 'role="img"' in page and "(no team)" not in page


def test_timeline_by_issuer_names_the_ca(
    admin_browser: Browser, platform: Platform, seeded: list[CertificateRecord]
) -> None:
    page = admin_browser.get("/timeline?group=issuer").text
    assert "Test Issuing CA 1" in page
    assert admin_browser.get("/timeline?group=colour").status_code == 400


def test_findings_by_severity_come_from_scans(
    admin_browser: Browser, platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("certs")
    record = issue(platform, "scanned.example.test", days=5)  # expiring within 30 days: medium
    (folder / "site.pem").write_bytes(record.certificate().public_bytes(serialization.Encoding.PEM))
    report = platform.discovery.scan_files(FileScanRequest((str(folder),)), actor="test")
    by_severity: dict[str, int] = {}
    for finding in report.findings:
        by_severity[finding.severity.value] = by_severity.get(finding.severity.value, 0) + 1
    assert by_severity  # the scan did flag something
    page = admin_browser.get("/").text
    for severity, count in by_severity.items():
        assert f'data-testid="findings-{severity}">{count}<' in page
    listing = admin_browser.get("/findings").text
    assert "scanned.example.test" in listing or record.serial in listing


def test_ca_health_lists_the_hierarchy(admin_browser: Browser, platform: Platform) -> None:
    page = admin_browser.get("/").text
    for ca in platform.authorities.hierarchy():
        assert ca.name in page
    platform.revocation.maintain()  # publishes CRLs and pre-signs OCSP responses
    page = admin_browser.get("/").text
    health = page[page.index('data-testid="ca-health"') :]
    assert "fresh" in health and "not published yet" not in health


def test_audit_log_shows_entries_and_detects_tampering(admin_browser: Browser, platform: Platform) -> None:
    record = issue(platform, "audited.example.test")
    page = admin_browser.get("/audit?verify=1").text
    assert "Intact" in page and "certificate.issued" in page
    assert record.serial in admin_browser.get(f"/certificates/{record.fingerprint_sha256}").text
    with platform.database.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE action = 'certificate.issued'"))
    cached = admin_browser.get("/audit").text
    assert "Intact" in cached  # a verdict is reused until asked for again...
    fresh = admin_browser.get("/audit?verify=1").text
    assert "Broken at entry" in fresh and "altered" in fresh

"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, against
a real ``certfleet serve --init`` with a seeded inventory. It walks the newcomer's path (the
printed URL, the printed token, this month's certificates in two clicks), filters the
inventory, opens and revokes a certificate as admin, checks that a read-only token has no
revoke button and gets 403 when it forces the request, and that the timeline is drawn.
Screenshots go to test-artifacts/ (kept by CI as artifacts)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from certfleet.access import Scope
from certfleet.app import open_platform
from certfleet.ca import IssuanceRequest
from certfleet.config import load_settings
from certfleet.inventory import CertificateQuery, CertificateRecord
from certfleet.web._overview import month_window
from certfleet.x509 import KeyType, generate_private_key
from tests.integration.test_serve import Server

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
# Flags from the machine notes: no sandbox as root, and no background traffic to the closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN_LINE = re.compile(r"Admin API token \(shown once\): (cf_\S+)")
DASHBOARD_LINE = re.compile(r"Dashboard:\s+(https://\S+)")
# Lifetimes (days) of the seeded certificates: some expire this week, this month, later.
SEED_DAYS = (2, 5, 9, 12, 18, 26, 33, 47, 61, 75, 96, 130, 170, 240)


def seed(data_dir: Path) -> tuple[list[CertificateRecord], str]:
    """Issue the seeded inventory through the services (beside the running server, as the
    CLI would) and mint a read-only token; return the whole inventory and that token."""
    platform = open_platform(load_settings({}, data_dir=data_dir))
    try:
        records = []
        for i, days in enumerate(SEED_DAYS):
            team = "ops" if i % 3 else "web"
            key = generate_private_key(KeyType.EC_P256)
            request = IssuanceRequest(
                "tls-server", key.public_key(), (f"svc{i:02d}.{team}.example.test",), None, days
            )
            records.append(platform.issuance.issue(request, actor="test:seed", team=team).record)
        read_token = platform.tokens.create("ops", Scope.READ, [], actor="test:seed").token
        # Everything the dashboard counts: the seeded certificates and the listener's own.
        everything = list(platform.inventory.query(CertificateQuery()))
        assert {r.fingerprint_sha256 for r in records} <= {r.fingerprint_sha256 for r in everything}
        return everything, read_token
    finally:
        platform.close()


@dataclass
class Served:
    server: Server
    dashboard_url: str
    admin_token: str
    read_token: str
    records: list[CertificateRecord]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    server = Server(data_dir, extra=["--init", "--workers", "1"])
    server.start()
    try:
        admin = TOKEN_LINE.search(server.stdout)
        url = DASHBOARD_LINE.search(server.stdout)
        assert admin and url, server.stdout
        records, read_token = seed(data_dir)
        yield Served(server, url.group(1), admin.group(1), read_token, records)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # The listener's certificate comes from the server's own private CA.
    ctx = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


def sign_in(page: Page, url: str, token: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="Sign in to certfleet")).to_be_visible()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def rows(page: Page) -> int:
    return page.locator('[data-testid="inventory"] tbody tr a[href^="/certificates/"]').count()


def test_newcomer_finds_this_months_certificates_in_two_clicks(
    served: Served, context: BrowserContext
) -> None:
    page = context.new_page()
    now = dt.datetime.now(dt.UTC)
    start, end = month_window(now)
    this_month = {r.fingerprint_sha256 for r in served.records if start <= r.not_after < end}
    sign_in(page, served.dashboard_url, served.admin_token)  # click 1: "Sign in"
    expect(page.get_by_test_id("month-count")).to_have_text(str(len(this_month)))
    expect(page.get_by_test_id("status-total")).to_contain_text(str(len(served.records)))
    expect(page.get_by_test_id("expiring-7")).to_contain_text(
        str(sum(1 for r in served.records if r.not_after <= now + dt.timedelta(days=7)))
    )
    expect(page.get_by_test_id("expiring-30")).to_contain_text(
        str(sum(1 for r in served.records if r.not_after <= now + dt.timedelta(days=30)))
    )
    shot(page, "overview")
    page.get_by_test_id("month-link").click()  # click 2
    expect(page.get_by_role("heading", name="Inventory")).to_be_visible()
    expect(page.get_by_test_id("match-count")).to_have_text(str(len(this_month)))
    links = page.locator('[data-testid="inventory"] tbody a[href^="/certificates/"]')
    listed = {
        href.rsplit("/", 1)[1]
        for href in (links.nth(i).get_attribute("href") or "" for i in range(links.count()))
    }
    assert listed == this_month
    shot(page, "this-month")


def test_filter_the_inventory(served: Served, context: BrowserContext) -> None:
    page = context.new_page()
    sign_in(page, served.dashboard_url, served.admin_token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Inventory").click()
    expect(page.get_by_test_id("match-count")).to_have_text(str(len(served.records)))
    page.get_by_label("Team").fill("web")
    page.get_by_label("Expiring within (days)").fill("60")
    page.get_by_role("button", name="Apply filters").click()
    now = dt.datetime.now(dt.UTC)
    expected = [r for r in served.records if r.team == "web" and r.not_after <= now + dt.timedelta(days=60)]
    expect(page.get_by_test_id("match-count")).to_have_text(str(len(expected)))
    assert rows(page) == len(expected)
    expect(page.get_by_label("Team")).to_have_value("web")  # the form keeps the filter
    shot(page, "inventory-filtered")


def test_admin_opens_a_certificate_and_revokes_it(served: Served, context: BrowserContext) -> None:
    page = context.new_page()
    target = max(served.records, key=lambda r: r.not_after)  # a seeded one: the longest-lived
    sign_in(page, served.dashboard_url, served.admin_token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Inventory").click()
    page.get_by_label("Name prefix, serial or fingerprint").fill(target.sans[0])
    page.get_by_role("button", name="Apply filters").click()
    page.get_by_role("link", name=target.sans[0]).click()
    expect(page.get_by_test_id("cert-status")).to_have_text("active")
    expect(page.get_by_test_id("sha256")).to_contain_text(target.fingerprint_sha256[:2].upper())
    expect(page.get_by_role("heading", name="Chain")).to_be_visible()
    page.get_by_label("Reason (RFC 5280 CRLReason)").select_option("keyCompromise")
    page.once("dialog", lambda dialog: dialog.accept())  # "Revoke this certificate?"
    page.get_by_test_id("revoke-button").click()
    expect(page.get_by_test_id("cert-status")).to_have_text("revoked")
    expect(page.get_by_role("status")).to_contain_text("revoked")
    expect(page.get_by_test_id("revoke-button")).to_have_count(0)
    shot(page, "revoked")
    page.goto(served.dashboard_url.rstrip("/") + "/certificates?status=revoked")
    expect(page.get_by_test_id("match-count")).to_have_text("1")


def test_read_only_token_has_no_revoke_button_and_a_forced_post_gets_403(
    served: Served, context: BrowserContext
) -> None:
    page = context.new_page()
    revoked = max(served.records, key=lambda r: r.not_after)
    target = next(r for r in served.records if r.team == "ops" and r is not revoked)
    sign_in(page, served.dashboard_url, served.read_token)
    expect(page.get_by_test_id("scope")).to_have_text("read")
    page.goto(served.dashboard_url.rstrip("/") + f"/certificates/{target.fingerprint_sha256}")
    expect(page.get_by_test_id("cert-status")).to_have_text("active")
    expect(page.get_by_test_id("revoke-button")).to_have_count(0)
    expect(page.get_by_role("heading", name="Revoke")).to_have_count(0)
    shot(page, "read-only")
    # Forge the form the page does not offer, with this session's own valid CSRF token.
    status = page.evaluate(
        """async (fingerprint) => {
            const csrf = document.querySelector('input[name=csrf_token]').value;
            const body = new URLSearchParams({csrf_token: csrf, reason: 'keyCompromise'});
            const response = await fetch('/certificates/' + fingerprint + '/revoke', {method: 'POST', body});
            return response.status;
        }""",
        target.fingerprint_sha256,
    )
    assert status == 403
    page.reload()
    expect(page.get_by_test_id("cert-status")).to_have_text("active")


def test_timeline_chart_is_rendered_and_its_bars_filter_the_inventory(
    served: Served, context: BrowserContext
) -> None:
    page = context.new_page()
    sign_in(page, served.dashboard_url, served.admin_token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Timeline").click()
    chart = page.get_by_test_id("timeline").locator("svg[role=img]")
    expect(chart).to_be_visible()
    bars = chart.locator("a.bar")
    assert bars.count() > 0
    box = bars.first.locator("rect").bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    shot(page, "timeline")
    count = int(bars.first.get_attribute("data-count") or "0")
    week = bars.first.get_attribute("data-week")
    bars.first.click()
    expect(page.get_by_role("heading", name="Inventory")).to_be_visible()
    expect(page.get_by_test_id("match-count")).to_have_text(str(count))
    assert f"expires_after={week}" in page.url

"""The dashboard's SPIFFE view: entries the user's team may see, each with its live SVID
(linked to its inventory page) and counts; an entry's page lists its valid serials."""

from __future__ import annotations

from certfleet.app import Platform
from tests.api.spiffe_fixtures import TD, enrol, svid_csr
from tests.web.conftest import Browser, token


def test_entries_with_their_live_svid_and_counts(browser: Browser, platform: Platform) -> None:
    platform.spiffe.initialize(TD, actor="test")
    agent = platform.agents.authenticate(enrol(platform, "host1"))
    web = platform.spiffe.entries.create(
        f"spiffe://{TD}/ns/web", f"spiffe://{TD}/agent/host1", ["unix:uid:1000"], actor="test", team="web"
    )
    other = platform.spiffe.entries.create(
        f"spiffe://{TD}/ns/pay",
        f"spiffe://{TD}/agent/host1",
        ["unix:uid:1001"],
        actor="test",
        team="payments",
    )
    issued = platform.spiffe.issue_x509(agent, [(web.id, svid_csr().encode()) for _ in range(3)])
    serials = [format(s.certificate.serial_number, "x") for s in issued]
    browser.sign_in(token(platform, "web", "read"))
    page = browser.get("/spiffe")
    assert page.status_code == 200
    html = page.text
    assert f'data-testid="trust-domain">{TD}<' in html
    assert f"spiffe://{TD}/ns/web" in html and f"spiffe://{TD}/ns/pay" not in html  # another team's
    assert 'data-testid="live-svids">3<' in html and 'data-testid="svids-issued">3<' in html
    record = platform.spiffe.entries.record(web.id)
    assert f'href="/certificates/{record.live_fingerprint_sha256}"' in html
    assert browser.get(f"/certificates/{record.live_fingerprint_sha256}").status_code == 200
    detail = browser.get(f"/spiffe/entries/{web.id}")
    assert detail.status_code == 200
    assert all(f"<li><code>{s}</code></li>" in detail.text for s in serials)
    assert browser.get(f"/spiffe/entries/{other.id}").status_code == 404
    assert '<a href="/spiffe"' in html  # in the navigation


def test_before_spiffe_init_the_page_says_how(browser: Browser, platform: Platform) -> None:
    browser.sign_in(token(platform))
    page = browser.get("/spiffe")
    assert page.status_code == 200
    assert "certfleet spiffe init --trust-domain NAME" in page.text


def test_sign_in_required(browser: Browser) -> None:
    response = browser.get("/spiffe")
    assert response.status_code in (302, 303) and "/login" in response.headers["location"]

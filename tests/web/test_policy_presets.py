"""The dashboard's policy page with a preset applied: each violation cites the clause of
the preset it breaks, and a team sees only its own certificates."""

from __future__ import annotations

import datetime as dt
import html

from certfleet.app import Platform
from tests.conftest import FakeClock
from tests.discovery.pki import Pki, pem, rsa_key
from tests.web.conftest import Browser, token


def test_the_policy_page_cites_the_clause_each_certificate_breaks_per_team(
    browser: Browser, platform: Platform, clock: FakeClock
) -> None:
    pki = Pki("Dashboard presets", now=clock.now())
    weak = pki.leaf(["weak.ops.example.test"], key=rsa_key(1024))
    long = pki.leaf(["long.web.example.test"], days=300)  # 300 days from 2026-11-28: above 200
    assert platform.inventory.import_bytes(pem(weak.cert), "weak", actor="t", team="ops").error is None
    assert platform.inventory.import_bytes(pem(long.cert), "long", actor="t", team="web").error is None
    platform.policy.apply_presets(["cabf-tls"], source="--preset cabf-tls", actor="test")

    browser.sign_in(token(platform))
    page = html.unescape(browser.get("/policy?refresh=1").text)
    assert "cabf-tls §6.1.5 key sizes" in page  # the rules table cites every clause
    assert page.count('data-testid="violation-clause"') == 2
    assert "cabf-tls §6.3.2 validity: max 200 days for notBefore ≥ 2026-03-15 (SC-081)" in page

    team = Browser(platform)
    try:
        team.sign_in(token(platform, "web", "read"))
        mine = html.unescape(team.get("/policy?refresh=1").text)
        assert mine.count('data-testid="violation-clause"') == 1
        assert "long.web.example.test" in mine and "weak.ops.example.test" not in mine
    finally:
        team.close()
    assert clock.now() > dt.datetime(2026, 3, 15, tzinfo=dt.UTC)

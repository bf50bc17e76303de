"""The "Cryptographic exposure" page: counts per team and algorithm with the campaign that
migrates each quantum-vulnerable line; a team's session sees its own team only."""

from __future__ import annotations

import re
from pathlib import Path

from certfleet.app import Platform
from tests.services.crypto_fleet import mixed_fleet
from tests.web.conftest import Browser, token


def _sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section data-team="([^"]*)">(.*?)</section>', html, re.S))


def test_the_page_counts_by_team_and_algorithm_with_the_migration(
    browser: Browser, platform: Platform, tmp_path: Path
) -> None:
    mixed_fleet(platform, tmp_path)
    browser.sign_in(token(platform))
    page = browser.get("/crypto")
    assert page.status_code == 200
    assert 'href="/crypto" aria-current="page"' in page.text
    sections = _sections(page.text)
    assert {"web", "legacy", "pq"} <= set(sections)
    assert '<strong data-testid="vulnerable">1</strong>' in sections["pq"]
    assert '<strong data-testid="safe">1</strong>' in sections["pq"]
    assert (
        "certfleet rotate --select &#39;key_type=rsa-2048,team=web&#39; --to-profile internal-mtls-pq"
        in sections["web"]
    )
    assert (
        'data-algorithm="ml-dsa-65"' in sections["pq"]
        and "migration" not in sections["pq"].split('data-algorithm="ml-dsa-65"')[1]
    )
    assert 'data-algorithm="rsa-1024" class="weak"' in sections["legacy"]
    assert 'data-testid="unmanaged"' in sections["legacy"] and "migration" not in sections["legacy"]


def test_a_team_session_sees_its_team_only(browser: Browser, platform: Platform, tmp_path: Path) -> None:
    mixed_fleet(platform, tmp_path)
    browser.sign_in(token(platform, "legacy", "read"))
    page = browser.get("/crypto", params={"team": "web"})
    assert page.status_code == 200
    assert set(_sections(page.text)) == {"legacy"}

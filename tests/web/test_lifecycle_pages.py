"""Policy compliance, rotation campaigns with their progress, and lineage on the
certificate page, read from the lifecycle services."""

from __future__ import annotations

import re

from certfleet.app import Platform
from certfleet.lifecycle.campaigns import CampaignRequest
from certfleet.lifecycle.selection import Selection
from certfleet.x509 import KeyType
from tests.web.conftest import Browser, issue, token

_POLICY = """
rules:
  - name: big-rsa-only
    key_types: [rsa-3072, rsa-4096]
    enforce: false
"""


def _tile(page: str, name: str) -> int:
    return int(re.search(rf'data-testid="{name}">(\d+)<', page).group(1))  # type: ignore[union-attr]


def test_policy_compliance_counts_violations_per_team(browser: Browser, platform: Platform) -> None:
    issue(platform, "ec1.ops.example.test", team="ops")
    issue(platform, "ec2.ops.example.test", team="ops")
    issue(platform, "rsa.ops.example.test", team="ops", key=KeyType.RSA_3072)
    issue(platform, "ec.web.example.test", team="web")
    platform.policy.apply(_POLICY, source="test.yaml", actor="test")
    browser.sign_in(token(platform))
    page = browser.get("/policy").text
    assert (
        _tile(page, "policy-evaluated"),
        _tile(page, "policy-failing"),
        _tile(page, "policy-compliant"),
    ) == (4, 3, 1)
    assert "big-rsa-only" in page and "report only" in page
    assert "ec.web.example.test" in page
    team = Browser(platform)
    try:
        team.sign_in(token(platform, "web", "read"))
        mine = team.get("/policy").text
        assert (_tile(mine, "policy-evaluated"), _tile(mine, "policy-failing")) == (1, 1)
        assert "ec1.ops.example.test" not in mine
    finally:
        team.close()


def test_a_campaign_shows_its_progress_and_the_lineage_it_made(
    admin_browser: Browser, platform: Platform
) -> None:
    old = [issue(platform, f"r{i}.example.test", key=KeyType.EC_P384) for i in range(3)]
    campaign = platform.rotation.create(CampaignRequest(Selection.parse("key=ec-p384")), actor="test")
    report = platform.rotation.run(campaign.id)
    page = admin_browser.get("/campaigns").text
    assert campaign.id[:8] in page
    assert (
        f'value="{report.counts.total}"' in page and f"{report.counts.total} / {report.counts.total}" in page
    )
    detail = admin_browser.get(f"/campaigns/{campaign.id}").text
    assert all(r.serial in detail for r in old)
    successor = platform.renewal.lineage(old[0])[1]
    before = admin_browser.get(f"/certificates/{old[0].fingerprint_sha256}").text
    assert f'href="/certificates/{successor.fingerprint_sha256}"' in before
    assert 'data-testid="cert-status">superseded<' in before
    after = admin_browser.get(f"/certificates/{successor.fingerprint_sha256}").text
    assert f'href="/certificates/{old[0].fingerprint_sha256}"' in after


def test_campaigns_are_admin_only_as_in_the_api(browser: Browser, platform: Platform) -> None:
    browser.sign_in(token(platform, "ops", "read"))
    assert browser.get("/campaigns").status_code == 403
    assert 'href="/campaigns"' not in browser.get("/").text


def test_the_campaign_page_says_what_each_item_waits_for_and_since_when(
    admin_browser: Browser, platform: Platform
) -> None:
    old = issue(platform, "held.example.test", key=KeyType.EC_P384)
    campaign = platform.rotation.create(
        CampaignRequest(Selection.parse("key=ec-p384"), to_key_type=KeyType.EC_P256), actor="test"
    )
    platform.rotation.run(campaign.id)
    [item] = platform.rotation.items(campaign.id)
    waiting, since = item.waiting(platform.rotation.get(campaign.id))
    assert waiting is not None and since is not None  # the key holder must send a CSR
    detail = admin_browser.get(f"/campaigns/{campaign.id}").text
    row = next(line for line in detail.splitlines() if old.serial in line)
    assert "a CSR for a ec-p256 key from its key holder" in row
    assert since.strftime("%Y-%m-%d") in row

"""The dashboard's revoke form obeys the same rules as ``POST .../revoke`` (issue 12), on
SQLite and PostgreSQL: a session of a CI token (``*.ci.example.test``) sees a revoke button
only on certificates all of whose names its patterns cover, never on an agent's identity,
and a forced POST is a 403 page with the reason that changes nothing."""

from __future__ import annotations

from certfleet.app import Platform
from certfleet.inventory import CertificateRecord, Status
from tests.api.revoke_fleet import CI_PATTERN, build_fleet, snapshot
from tests.web.conftest import Browser, token


def _page(browser: Browser, record: CertificateRecord) -> str:
    page = browser.get(f"/certificates/{record.fingerprint_sha256}")
    assert page.status_code == 200, page.text
    return page.text


def _forced(browser: Browser, platform: Platform, record: CertificateRecord, reason: str) -> None:
    before = snapshot(platform)
    response = browser.post(
        f"/certificates/{record.fingerprint_sha256}/revoke",
        data={"csrf_token": browser.csrf(), "reason": "keyCompromise"},
    )
    assert response.status_code == 403
    assert reason in response.text.replace("&#39;", "'")
    assert snapshot(platform) == before  # no revocation, blocked key, audit entry or event
    assert platform.inventory.find(record.fingerprint_sha256).status is Status.ACTIVE


def test_an_issue_session_has_no_revoke_button_and_cannot_revoke(
    browser: Browser, platform: Platform
) -> None:
    fleet = build_fleet(platform)
    browser.sign_in(token(platform, "web", "issue", [CI_PATTERN]))
    for record in (fleet.ci, fleet.prod, fleet.agent_identity):
        assert 'data-testid="revoke-button"' not in _page(browser, record)
        _forced(browser, platform, record, "this token has scope issue; revoke is required")


def test_a_revoke_session_revokes_only_within_its_patterns(browser: Browser, platform: Platform) -> None:
    fleet = build_fleet(platform)
    browser.sign_in(token(platform, "web", "revoke", [CI_PATTERN]))
    for record in (fleet.prod, fleet.mixed, fleet.agent_identity):
        assert 'data-testid="revoke-button"' not in _page(browser, record)
    _forced(browser, platform, fleet.prod, "this token may not revoke a certificate for 'www.example.test'")
    _forced(browser, platform, fleet.mixed, "this token may not revoke a certificate for 'api.example.test'")
    _forced(browser, platform, fleet.agent_identity, "only an admin or that agent may revoke it")

    assert 'data-testid="revoke-button"' in _page(browser, fleet.ci)
    response = browser.post(
        f"/certificates/{fleet.ci.fingerprint_sha256}/revoke",
        data={"csrf_token": browser.csrf(), "reason": "keyCompromise"},
    )
    assert response.status_code == 303
    assert platform.inventory.find(fleet.ci.fingerprint_sha256).status is Status.REVOKED


def test_an_admin_session_may_revoke_an_agent_identity(admin_browser: Browser, platform: Platform) -> None:
    fleet = build_fleet(platform)
    assert 'data-testid="revoke-button"' in _page(admin_browser, fleet.agent_identity)
    response = admin_browser.post(
        f"/certificates/{fleet.agent_identity.fingerprint_sha256}/revoke",
        data={"csrf_token": admin_browser.csrf(), "reason": "superseded"},
    )
    assert response.status_code == 303

"""What a session sees and may do is its token's team and scope, exactly as in the REST API:
no revoke button for a read token and a 403 when the POST is forced; CSRF on every form."""

from __future__ import annotations

from certfleet.app import Platform
from certfleet.audit import CertificateRef
from certfleet.inventory import Status
from tests.web.conftest import Browser, hidden, issue, token


def _revoke(browser: Browser, fingerprint: str, csrf: str, reason: str = "keyCompromise") -> int:
    return browser.post(
        f"/certificates/{fingerprint}/revoke", data={"csrf_token": csrf, "reason": reason}
    ).status_code


def _status(platform: Platform, fingerprint: str) -> Status:
    return platform.inventory.find(fingerprint).status


def test_admin_revokes_with_a_reason_and_sees_the_new_status(
    admin_browser: Browser, platform: Platform
) -> None:
    record = issue(platform, "www.ops.example.test")
    page = admin_browser.get(f"/certificates/{record.fingerprint_sha256}")
    assert 'data-testid="revoke-button"' in page.text
    response = admin_browser.post(
        f"/certificates/{record.fingerprint_sha256}/revoke",
        data={"csrf_token": hidden(page, "csrf_token"), "reason": "keyCompromise"},
    )
    assert response.status_code == 303
    after = admin_browser.get(response.headers["location"])
    assert 'data-testid="cert-status">revoked<' in after.text
    assert 'data-testid="revoke-button"' not in after.text
    stored = platform.inventory.find(record.fingerprint_sha256)
    assert stored.status is Status.REVOKED and stored.revocation_reason == "keyCompromise"
    revoked = [e for e in platform.audit.entries() if e.action == "certificate.revoked"]
    assert [e.subject for e in revoked] == [CertificateRef(record.serial, record.issuer).subject]
    assert revoked[0].actor.startswith("token:")


def test_revoking_twice_is_a_conflict_page(admin_browser: Browser, platform: Platform) -> None:
    record = issue(platform, "twice.example.test")
    csrf = admin_browser.csrf()
    assert _revoke(admin_browser, record.fingerprint_sha256, csrf) == 303
    again = admin_browser.post(
        f"/certificates/{record.fingerprint_sha256}/revoke",
        data={"csrf_token": csrf, "reason": "unspecified"},
    )
    assert again.status_code == 409
    assert "already revoked" in again.text


def test_a_read_token_has_no_revoke_button_and_a_forced_post_is_forbidden(
    browser: Browser, platform: Platform
) -> None:
    record = issue(platform, "keep.example.test")
    browser.sign_in(token(platform, "ops", "read"))
    page = browser.get(f"/certificates/{record.fingerprint_sha256}")
    assert page.status_code == 200
    assert "revoke-button" not in page.text and "/revoke" not in page.text
    response = browser.post(
        f"/certificates/{record.fingerprint_sha256}/revoke",
        data={"csrf_token": hidden(page, "csrf_token"), "reason": "keyCompromise"},  # a valid CSRF token
    )
    assert response.status_code == 403
    assert "scope read; revoke is required" in response.text
    assert _status(platform, record.fingerprint_sha256) is Status.ACTIVE


def test_revoke_without_a_valid_csrf_token_is_refused(admin_browser: Browser, platform: Platform) -> None:
    record = issue(platform, "csrf.example.test")
    assert _revoke(admin_browser, record.fingerprint_sha256, "") == 403
    other = Browser(platform)  # another session's token is no good either
    try:
        other.sign_in(token(platform))
        assert _revoke(admin_browser, record.fingerprint_sha256, other.csrf()) == 403
    finally:
        other.close()
    assert _status(platform, record.fingerprint_sha256) is Status.ACTIVE


def test_a_revoke_token_may_revoke_its_own_teams_certificate_only(
    browser: Browser, platform: Platform
) -> None:
    # Was an issue token before issue 12: revoking now needs the revoke scope of its own.
    ours = issue(platform, "a.web.example.test", team="web")
    theirs = issue(platform, "b.ops.example.test", team="ops")
    browser.sign_in(token(platform, "web", "revoke", ["*.web.example.test"]))
    csrf = browser.csrf()
    assert browser.get(f"/certificates/{theirs.fingerprint_sha256}").status_code == 404
    assert _revoke(browser, theirs.fingerprint_sha256, csrf) == 404
    assert _status(platform, theirs.fingerprint_sha256) is Status.ACTIVE
    assert _revoke(browser, ours.fingerprint_sha256, csrf) == 303
    assert _status(platform, ours.fingerprint_sha256) is Status.REVOKED


def test_a_team_token_sees_only_its_team(browser: Browser, platform: Platform) -> None:
    ours = issue(platform, "mine.web.example.test", team="web")
    theirs = issue(platform, "other.ops.example.test", team="ops")
    browser.sign_in(token(platform, "web", "read"))
    page = browser.get("/certificates")
    assert ours.fingerprint_sha256 in page.text and theirs.fingerprint_sha256 not in page.text
    assert 'name="team"' not in page.text  # no team filter to pick from
    refused = browser.get("/certificates?team=ops")
    assert refused.status_code == 403 and "its own team" in refused.text
    assert theirs.fingerprint_sha256 not in browser.get("/certificates.csv").text
    overview = browser.get("/")
    assert 'data-testid="status-total"><span class="tile-value">1<' in overview.text


def test_the_audit_log_and_starting_scans_need_admin(browser: Browser, platform: Platform) -> None:
    browser.sign_in(token(platform, "ops", "read"))
    assert browser.get("/audit").status_code == 403
    assert 'href="/audit"' not in browser.get("/").text
    scans = browser.get("/scans")
    assert 'action="/scans"' not in scans.text
    forced = browser.post("/scans", data={"csrf_token": hidden(scans, "csrf_token"), "targets": "127.0.0.1"})
    assert forced.status_code == 403
    assert browser.get("/scans").text.count("/scans/") == 0

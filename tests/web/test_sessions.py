"""Signing in and out: the cookie's flags, what the database keeps, CSRF on every form, and
the session ending with its token, its idle time or its lifetime."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import text

from certfleet.app import Platform
from certfleet.web import LOGIN_COOKIE, SESSION_COOKIE
from tests.conftest import FakeClock
from tests.web.conftest import Browser, hidden, token


def _cookie_attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")]
    attrs = {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "") for p in parts[1:]}
    attrs["__value__"] = parts[0].split("=", 1)[1]
    return attrs


def test_pages_need_a_session_and_say_where_to_come_back(browser: Browser) -> None:
    response = browser.get("/certificates?status=active")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fcertificates%3Fstatus%3Dactive"


def test_signing_in_sets_a_host_only_secure_httponly_strict_cookie(
    browser: Browser, platform: Platform
) -> None:
    response = browser.sign_in(token(platform))
    session = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    attrs = _cookie_attributes(session)
    assert SESSION_COOKIE.startswith("__Host-")  # RFC 6265bis 4.1.3.2: Secure, Path=/, no Domain
    assert "secure" in attrs and "httponly" in attrs
    assert attrs["samesite"].lower() == "strict"
    assert attrs["path"] == "/"
    assert "domain" not in attrs
    assert response.headers["location"] == "/"
    assert browser.get("/").status_code == 200


def test_the_database_keeps_only_a_hash_of_the_session_secret(browser: Browser, platform: Platform) -> None:
    response = browser.sign_in(token(platform))
    secret = _cookie_attributes(
        next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    )["__value__"]
    with platform.database.engine.connect() as conn:
        stored = conn.execute(text("SELECT id_sha256 FROM web_sessions")).scalars().all()
    assert stored == [hashlib.sha256(secret.encode()).hexdigest()]
    assert secret not in stored


def test_a_wrong_token_is_refused_and_opens_no_session(browser: Browser, platform: Platform) -> None:
    page = browser.get("/login")
    response = browser.post("/login", data={"nonce": hidden(page, "nonce"), "token": "cf_abc_wrong"})
    assert response.status_code == 401
    assert "not valid" in response.text
    assert not any(h.startswith(SESSION_COOKIE) for h in response.headers.get_list("set-cookie"))
    assert browser.get("/").status_code == 303


def test_sign_in_without_the_forms_nonce_is_refused(browser: Browser, platform: Platform) -> None:
    # Login CSRF: a page elsewhere posting a token of the attacker's has no nonce cookie.
    response = browser.post("/login", data={"nonce": "forged", "token": token(platform)})
    assert response.status_code == 403
    assert browser.get("/").status_code == 303


def test_next_never_leaves_the_site(browser: Browser, platform: Platform) -> None:
    page = browser.get("/login?next=//evil.example/x")
    response = browser.post(
        "/login", data={"nonce": hidden(page, "nonce"), "token": token(platform), "next": "//evil.example/x"}
    )
    assert response.headers["location"] == "/"


def test_sign_out_needs_the_csrf_token_and_ends_the_session(browser: Browser, platform: Platform) -> None:
    browser.sign_in(token(platform))
    refused = browser.post("/logout", data={"csrf_token": "0" * 64})
    assert refused.status_code == 403
    assert browser.get("/").status_code == 200  # still signed in
    replay = {"Cookie": f"{SESSION_COOKIE}={browser.client.cookies[SESSION_COOKIE]}"}
    browser.client.cookies.clear()
    assert browser.get("/", headers=replay).status_code == 200  # the cookie alone opens the session
    csrf = hidden(browser.get("/", headers=replay), "csrf_token")
    done = browser.post("/logout", data={"csrf_token": csrf}, headers=replay)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    with platform.database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM web_sessions")).scalar_one() == 0
    assert browser.get("/", headers=replay).status_code == 303  # replayed after sign-out: nothing


def test_revoking_the_api_token_ends_its_sessions(browser: Browser, platform: Platform) -> None:
    minted = token(platform, "ops", "read")
    browser.sign_in(minted)
    token_id = minted.split("_")[1]
    platform.tokens.revoke(token_id, actor="test")
    assert browser.get("/").status_code == 303


def test_an_idle_session_expires(browser: Browser, platform: Platform, clock: FakeClock) -> None:
    browser.sign_in(token(platform))
    clock.advance(dt.timedelta(minutes=29))
    assert browser.get("/").status_code == 200  # activity keeps it alive...
    clock.advance(dt.timedelta(minutes=29))
    assert browser.get("/").status_code == 200
    clock.advance(dt.timedelta(minutes=31))  # ...half an hour without any does not
    assert browser.get("/").status_code == 303


def test_no_session_outlives_its_lifetime(browser: Browser, platform: Platform, clock: FakeClock) -> None:
    browser.sign_in(token(platform))
    for _ in range(25):  # busy all day: 25 x 29 minutes is past the 12 hour lifetime
        clock.advance(dt.timedelta(minutes=29))
        last = browser.get("/")
    assert last.status_code == 303


def test_sign_in_is_audited(browser: Browser, platform: Platform) -> None:
    browser.sign_in(token(platform, "web", "read"))
    entry = list(platform.audit.entries())[-1]
    assert entry.action == "web.signed_in"
    assert entry.details == {"team": "web", "scope": "read"}


def test_pages_carry_security_headers(browser: Browser, platform: Platform) -> None:
    login = browser.get("/login")
    assert LOGIN_COOKIE in login.headers["set-cookie"]
    browser.sign_in(token(platform))
    page = browser.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text.replace('<script src="/static/dashboard.js" defer></script>', "")

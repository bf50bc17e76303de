"""Single sign-on through a real OpenID provider: panva's oidc-provider (OpenID Certified, from
the npm registry, pinned in oidc_provider/package-lock.json) run with node on loopback, a
real ``certfleet serve`` configured with ``[web.oidc]``, and Debian's Chromium driven by
Playwright through the real redirects and the provider's own login and consent pages.

A payments user sees only payments certificates; a user whose groups map to nothing, an ID
token for another client, an expired ID token (both re-signed by the provider with its own
key, see provider.mjs) and a replayed callback are each refused with a 403 page that says
why, and leave no session cookie."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from certfleet.app import open_platform
from certfleet.ca import IssuanceRequest
from certfleet.config import load_settings
from certfleet.inventory import CertificateRecord
from certfleet.x509 import KeyType, generate_private_key
from tests.integration.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS
from tests.integration.test_serve import Server
from tests.ports import free_port

pytestmark = pytest.mark.integration

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "certfleet"
SESSION_COOKIE = "__Host-certfleet-session"
READY_DEADLINE_SECONDS = 30


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen[bytes]
    log: Path


def npm_ci(folder: Path) -> subprocess.Popen[str]:
    """Start installing oidc-provider from the lock file into a private folder (``npm ci``:
    exact versions; the npm cache serves it offline after the first run)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm (node) is required for the single sign-on tests")
    for name in ("package.json", "package-lock.json", "provider.mjs"):
        shutil.copy(PROVIDER_DIR / name, folder / name)
    return subprocess.Popen(
        [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_provider(folder: Path, port: int, redirect_uri: str, secret: str) -> Provider:
    log = folder / "provider.log"
    env = {**os.environ, "PORT": str(port), "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": secret}
    env["REDIRECT_URI"] = redirect_uri
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["node", "provider.mjs"], cwd=folder, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + READY_DEADLINE_SECONDS
    # The script prints its ready line from the listen callback.
    while "ready http://" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"oidc-provider did not start: {log.read_text()}")
        time.sleep(0.05)
    return Provider(f"http://127.0.0.1:{port}", process, log)


@dataclass
class Served:
    url: str
    payments: list[CertificateRecord]
    others: list[CertificateRecord]


def seed(data_dir: Path) -> tuple[list[CertificateRecord], list[CertificateRecord]]:
    platform = open_platform(load_settings({}, data_dir=data_dir))
    try:
        made: dict[str, list[CertificateRecord]] = {"payments": [], "ops": []}
        for i, team in enumerate(("payments", "ops", "payments", "ops")):
            key = generate_private_key(KeyType.EC_P256)
            request = IssuanceRequest(
                "tls-server", key.public_key(), (f"sso{i}.{team}.example.test",), None, 30
            )
            made[team].append(platform.issuance.issue(request, actor="test:seed", team=team).record)
        return made["payments"], made["ops"]
    finally:
        platform.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("sso")
    # npm installs the provider while certfleet starts: only the port must be known first.
    folder = tmp_path_factory.mktemp("oidc-provider")
    install = npm_ci(folder)
    data_dir = root / "data"
    data_dir.mkdir(mode=0o700)
    server = Server(data_dir, extra=["--init", "--workers", "1"])
    secret_file = root / "client-secret"
    secret_file.write_text("test secret: not for production\n")
    secret_file.chmod(0o600)
    provider_port = free_port()
    (data_dir / "config.toml").write_text(
        f"""
[web.oidc]
issuer = "http://127.0.0.1:{provider_port}"
client_id = "{CLIENT_ID}"
client_secret_file = "{secret_file}"
provider_name = "Test IdP"

[web.oidc.groups]
"pki-admins" = {{role = "admin"}}
"team-payments" = {{team = "payments", role = "viewer"}}
"""
    )
    provider: Provider | None = None
    try:
        server.start()
        payments, others = seed(data_dir)
        _, errors = install.communicate(timeout=300)
        assert install.returncode == 0, errors
        provider = start_provider(
            folder, provider_port, f"{server.https}/login/oidc/callback", secret_file.read_text().strip()
        )
        yield Served(server.https, payments, others)
    finally:
        if install.poll() is None:
            install.kill()
            install.wait()
        if server.process is not None:
            server.stop()
        if provider is not None:
            provider.process.terminate()
            provider.process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(ignore_https_errors=True)
    ctx.set_default_timeout(15_000)
    # The provider's page imports a web font; nothing leaves loopback.
    ctx.route(
        "**/*", lambda route: route.abort() if "127.0.0.1" not in route.request.url else route.continue_()
    )
    yield ctx
    ctx.close()


def sign_in_at_provider(page: Page, served: Served, login: str) -> list[str]:
    """From certfleet's sign-in page through the provider's login and consent pages; return
    the callback URLs the browser was sent to."""
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/login/oidc/callback" in r.url else None)
    page.goto(served.url + "/certificates")
    expect(page.get_by_role("heading", name="Sign in to certfleet")).to_be_visible()
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()
    return callbacks


def has_session(context: BrowserContext) -> bool:
    return any(c["name"] == SESSION_COOKIE for c in context.cookies())


def refused(page: Page, message: str) -> None:
    expect(page.get_by_role("heading", name="403 Forbidden")).to_be_visible()
    expect(page.get_by_test_id("error-detail")).to_contain_text(message)


def test_a_payments_user_signs_in_and_sees_only_payments_then_a_replayed_callback_is_refused(
    served: Served, context: BrowserContext
) -> None:
    page = context.new_page()
    callbacks = sign_in_at_provider(page, served, "pat")
    expect(page.get_by_role("heading", name="Inventory")).to_be_visible()
    expect(page.get_by_test_id("signed-in-as")).to_have_text("oidc:pat@example.test")
    expect(page.get_by_test_id("match-count")).to_have_text(str(len(served.payments)))
    links = page.locator('[data-testid="inventory"] tbody a[href^="/certificates/"]')
    listed = {(links.nth(i).get_attribute("href") or "").rsplit("/", 1)[1] for i in range(links.count())}
    assert listed == {r.fingerprint_sha256 for r in served.payments}
    assert page.goto(served.url + "/certificates?team=ops").status == 403  # type: ignore[union-attr]
    # Given the callback URL that signed pat in, When it is opened again (a replay),
    # Then it is refused and opens no new session.
    assert len(callbacks) == 1
    context.clear_cookies()
    page.goto(callbacks[0])
    refused(page, "already used or has expired")
    assert not has_session(context)


def test_a_user_whose_groups_map_to_nothing_is_refused(served: Served, context: BrowserContext) -> None:
    page = context.new_page()
    sign_in_at_provider(page, served, "una")
    refused(page, "in no group that certfleet maps")
    assert not has_session(context)


@pytest.mark.parametrize(
    ("login", "message"),
    [("mallory", "issued for another application"), ("late", "the ID token expired")],
)
def test_an_id_token_for_another_client_or_expired_is_refused(
    served: Served, context: BrowserContext, login: str, message: str
) -> None:
    page = context.new_page()
    sign_in_at_provider(page, served, login)
    refused(page, message)
    assert not has_session(context)

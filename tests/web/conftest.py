"""An in-process browser for the dashboard: httpx over ASGI (no sockets) with a cookie jar,
sign-in through the real form, and helpers that read tokens and links out of the pages."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from certfleet.access import Scope
from certfleet.api import create_api_app
from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.inventory import CertificateRecord
from certfleet.x509 import KeyType, generate_private_key

BASE = "https://certfleet.test"
_HIDDEN = re.compile(r'name="(nonce|csrf_token)" value="([^"]+)"')


class Browser:
    """One user agent: its own cookie jar, requests run on a private event loop."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=create_api_app(platform))
        self.client = httpx.AsyncClient(transport=transport, base_url=BASE)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def sign_in(self, token: str) -> httpx.Response:
        page = self.get("/login")
        assert page.status_code == 200
        response = self.post("/login", data={"nonce": hidden(page, "nonce"), "token": token, "next": "/"})
        assert response.status_code == 303, response.text
        return response

    def csrf(self) -> str:
        return hidden(self.get("/"), "csrf_token")

    def close(self) -> None:
        self._runner.run(self.client.aclose())
        self._runner.close()


def hidden(page: httpx.Response, name: str) -> str:
    for field, value in _HIDDEN.findall(page.text):
        if field == name:
            return value
    raise AssertionError(f"no hidden {name} field in {page.url}")


def token(platform: Platform, team: str = "ops", scope: str = "admin", allow: Sequence[str] = ()) -> str:
    return platform.tokens.create(team, Scope(scope), list(allow), actor="test").token


def issue(
    platform: Platform, name: str, *, days: int = 90, team: str | None = "ops", key: KeyType = KeyType.EC_P256
) -> CertificateRecord:
    private = generate_private_key(key)
    request = IssuanceRequest("tls-server", private.public_key(), (name,), None, days)
    return platform.issuance.issue(request, actor="test", team=team).record


@pytest.fixture
def browser(platform: Platform) -> Iterator[Browser]:
    b = Browser(platform)
    yield b
    b.close()


@pytest.fixture
def admin_browser(browser: Browser, platform: Platform) -> Browser:
    browser.sign_in(token(platform))
    return browser


def day(value: dt.datetime) -> str:
    return value.date().isoformat()

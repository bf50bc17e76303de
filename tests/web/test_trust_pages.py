"""The "Trust" page: the consolidation report of what scans and agents recorded."""

from __future__ import annotations

import re
from pathlib import Path

from certfleet.app import Platform
from certfleet.discovery.requests import FileScanRequest
from tests.discovery.pki import Pki, pem
from tests.web.conftest import Browser, token


def _table(html: str, testid: str) -> str:
    match = re.search(rf'<table data-testid="{testid}">(.*?)</table>', html, re.S)
    assert match is not None, testid
    return match.group(1)


def test_the_page_names_unused_roots_and_links_from_the_nav(
    browser: Browser, platform: Platform, tmp_path: Path
) -> None:
    used, spare = Pki("Used"), Pki("Spare")
    bundle = tmp_path / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(pem(used.root.cert, spare.root.cert))
    (tmp_path / "site.pem").write_bytes(pem(used.leaf(["site.test"]).cert, used.intermediate.cert))
    platform.discovery.scan_files(FileScanRequest(paths=(str(tmp_path),), host="web-9"), actor="test")
    browser.sign_in(token(platform))

    page = browser.get("/trust")
    assert page.status_code == 200
    assert 'href="/trust" aria-current="page"' in page.text
    unused = _table(page.text, "unused-roots")
    assert "CN=Spare Root" in unused and "CN=Used Root" not in unused
    assert "ca-certificates.crt" in unused and "web-9" in unused
    assert "CN=Used Intermediate" in _table(page.text, "issuers")
    assert browser.get("/trust", params={"horizon": "soon"}).status_code == 400

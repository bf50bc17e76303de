"""Starting a scan from the dashboard (admin) and following its progress."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from certfleet.app import Platform
from tests.web.conftest import Browser, hidden, issue


def test_an_admin_starts_a_file_scan_and_follows_it(
    admin_browser: Browser, platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("scan-me")
    record = issue(platform, "found.example.test")
    (folder / "cert.pem").write_bytes(record.certificate().public_bytes(serialization.Encoding.PEM))
    form = admin_browser.get("/scans")
    response = admin_browser.post(
        "/scans", data={"csrf_token": hidden(form, "csrf_token"), "kind": "files", "targets": str(folder)}
    )
    assert response.status_code == 303
    scan_url = response.headers["location"]
    assert admin_browser.get(f"{scan_url}/progress").json()["status"] == "pending"
    platform.scans.run_pending(wait=True)  # what the scheduler's `scans` job does on serve
    progress = admin_browser.get(f"{scan_url}/progress").json()
    assert progress["status"] == "completed", progress
    assert progress["certificates_found"] == 1 and progress["targets"] == [str(folder)]
    assert progress["requested_by"].startswith("token:")
    page = admin_browser.get(scan_url).text
    assert 'data-testid="scan-status">completed<' in page and 'data-progress-url="' in page
    assert scan_url in admin_browser.get("/scans").text


def test_a_bad_target_is_refused_before_anything_is_recorded(admin_browser: Browser) -> None:
    form = admin_browser.get("/scans")
    response = admin_browser.post(
        "/scans", data={"csrf_token": hidden(form, "csrf_token"), "kind": "net", "targets": "not a host!"}
    )
    assert response.status_code == 400
    assert "/scans/" not in admin_browser.get("/scans").text


def test_starting_a_scan_needs_the_csrf_token(
    admin_browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("nothing")
    response = admin_browser.post("/scans", data={"kind": "files", "targets": str(folder)})
    assert response.status_code == 403
    assert "/scans/" not in admin_browser.get("/scans").text

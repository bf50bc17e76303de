"""The discovery endpoints of the REST API: scopes, teams and problems."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from certfleet.app import Platform
from certfleet.discovery import fingerprint
from tests.api.conftest import ApiClient
from tests.discovery.pki import Pki, pem


@pytest.fixture
def api(platform: Platform) -> Iterator[ApiClient]:
    client = ApiClient(platform)
    yield client
    client.close()


def test_scans_need_admin_and_sane_targets(api: ApiClient) -> None:
    reader = api.token("web", "read")
    refused = api.post("/api/v1/scans", token=reader, json={"targets": ["127.0.0.1"]})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    admin = api.token("ops", "admin")
    bad = api.post("/api/v1/scans", token=admin, json={"targets": ["127.0.0.1:99999"]})
    assert bad.status_code == 400 and "bad port" in bad.json()["detail"]
    huge = api.post("/api/v1/scans", token=admin, json={"targets": ["10.0.0.0/8"]})
    assert huge.status_code == 400
    unknown = api.post("/api/v1/scans", token=admin, json={"targets": ["x.test"], "bogus": 1})
    assert unknown.status_code == 422
    assert api.get("/api/v1/scans/nope", token=admin).status_code == 404


def test_file_scan_through_the_api_is_team_scoped(api: ApiClient, tmp_path: Path) -> None:
    pki = Pki("Api")
    leaf = pki.leaf(["api.test"])
    (tmp_path / "leaf.pem").write_bytes(pem(leaf.cert))
    admin = api.token("ops", "admin")
    started = api.post(
        "/api/v1/scans", token=admin, json={"kind": "files", "targets": [str(tmp_path)], "team": "web"}
    )
    assert started.status_code == 202, started.text
    scan_id = started.json()["id"]
    # The API only queues it: the scheduler's `scans` job starts it on this node
    assert api.get(f"/api/v1/scans/{scan_id}", token=admin).json()["status"] == "pending"
    api.platform.scheduler.tick()
    api.platform.scans.close()  # wait for the scan the job started
    run = api.get(f"/api/v1/scans/{scan_id}", token=admin).json()
    assert (run["status"], run["kind"], run["team"], run["certificates_found"]) == (
        "completed",
        "files",
        "web",
        1,
    )
    web, payments = api.token("web", "read"), api.token("payments", "read")
    assert api.get(f"/api/v1/scans/{scan_id}", token=web).status_code == 200
    assert api.get(f"/api/v1/scans/{scan_id}", token=payments).status_code == 404
    serial = format(leaf.cert.serial_number, "x")
    locations = api.get(f"/api/v1/certificates/{serial}/locations", token=web).json()
    assert locations["fingerprint_sha256"] == fingerprint(leaf.cert)
    assert [(loc["kind"], loc["location"], loc["present"]) for loc in locations["locations"]] == [
        ("file", str(tmp_path / "leaf.pem"), True)
    ]
    assert api.get(f"/api/v1/certificates/{serial}/locations", token=payments).status_code == 404
    codes = {f["code"] for f in api.get("/api/v1/findings", token=web).json()["items"]}
    assert codes == {"untrusted-issuer"}
    assert api.get("/api/v1/findings", token=payments).json()["items"] == []
    assert api.get("/api/v1/findings", token=payments, params={"team": "web"}).status_code == 403
    high = api.get("/api/v1/findings", token=admin, params={"severity": "critical"}).json()["items"]
    assert high == []
    page = api.get("/api/v1/findings", token=admin, params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]


def test_a_scan_that_fails_inside_ends_failed_with_the_error(
    api: ApiClient, platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bug that escapes the scan before it records anything (here: a fault injected
    # into the discovery service, as a lost database would raise)
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the scanner fell over")

    monkeypatch.setattr(platform.discovery, "scan_files", broken)
    admin = api.token("ops", "admin")
    started = api.post("/api/v1/scans", token=admin, json={"kind": "files", "targets": [str(tmp_path)]})
    assert started.status_code == 202, started.text
    platform.scans.run_pending(wait=True)
    # Then the run is not left pending for ever: it ended failed, with the reason
    run = api.get(f"/api/v1/scans/{started.json()['id']}", token=admin).json()
    assert (run["status"], run["error"]) == ("failed", "RuntimeError: the scanner fell over")
    assert run["finished_at"] is not None

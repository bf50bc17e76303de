"""``GET /api/v1/trust/report``: what a scan of trust stores recorded, per team, and bad
parameters refused as problems."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from certfleet.app import Platform
from certfleet.discovery.requests import FileScanRequest
from tests.api.conftest import ApiClient
from tests.discovery.pki import Pki, pem


@pytest.fixture
def api(platform: Platform) -> Iterator[ApiClient]:
    client = ApiClient(platform)
    yield client
    client.close()


def test_the_report_names_unused_roots_and_scopes_leaves_to_the_team(api: ApiClient, tmp_path: Path) -> None:
    used, spare = Pki("Used"), Pki("Spare")
    bundle = tmp_path / "etc/pki/tls/certs/ca-bundle.crt"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(pem(used.root.cert, spare.root.cert))
    (tmp_path / "web.pem").write_bytes(pem(used.leaf(["web.test"]).cert, used.intermediate.cert))
    request = FileScanRequest(paths=(str(tmp_path),), team="web", host="rhel-1")
    api.platform.discovery.scan_files(request, actor="test")

    admin = api.token("ops", "admin")
    report = api.get("/api/v1/trust/report", token=admin)
    assert report.status_code == 200, report.text
    body = report.json()
    assert [(r["subject"], r["leaves"], r["hosts"]) for r in body["roots"]] == [
        ("CN=Spare Root", 0, ["rhel-1"]),
        ("CN=Used Root", 1, ["rhel-1"]),
    ]
    assert [r["subject"] for r in body["unused_roots"]] == ["CN=Spare Root"]
    assert body["issuers"] == [{"team": "web", "issuer": "CN=Used Intermediate", "leaves": 1}]

    payments = api.token("payments", "read")
    theirs = api.get("/api/v1/trust/report", token=payments).json()
    assert theirs["team"] == "payments" and theirs["issuers"] == []
    assert api.get("/api/v1/trust/report", token=payments, params={"team": "web"}).status_code == 403
    bad = api.get("/api/v1/trust/report", token=admin, params={"horizon_days": -1})
    assert bad.status_code == 422


def test_a_rest_file_scan_can_read_the_servers_own_trust_stores(api: ApiClient) -> None:
    admin = api.token("ops", "admin")
    empty = api.post("/api/v1/scans", token=admin, json={"kind": "files", "targets": []})
    assert empty.status_code == 400 and empty.json()["detail"] == "give at least one target"
    started = api.post("/api/v1/scans", token=admin, json={"kind": "files", "trust_stores": True})
    assert started.status_code == 202, started.text
    assert started.json()["options"]["trust_stores"] is True
    api.platform.scheduler.tick()
    api.platform.scans.close()  # wait for the scan the job started
    run = api.get(f"/api/v1/scans/{started.json()['id']}", token=admin).json()
    assert run["status"] == "completed" and run["certificates_found"] > 0
    roots = api.get("/api/v1/trust/report", token=admin).json()["roots"]
    assert roots and {h for r in roots for h in r["hosts"]} == {socket.gethostname()}

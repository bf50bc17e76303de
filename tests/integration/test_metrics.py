"""``/metrics`` of a real ``certfleet serve`` on the separate listener of ``[metrics] listen``,
scraped over the network and parsed with prometheus_client's parser: the inventory gauges
match the database, a revocation through the REST API and an OCSP query by ``openssl ocsp``
are counted, and the HTTPS listener no longer serves metrics."""

from __future__ import annotations

import datetime as dt
import re
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from prometheus_client.parser import text_string_to_metric_families

from certfleet.app import open_platform
from certfleet.config import load_settings
from certfleet.inventory import CertificateQuery, CertificateRecord, Status
from tests.integration.test_dashboard_browser import TOKEN_LINE, seed
from tests.integration.test_serve import Server
from tests.ports import free_port

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Served:
    server: Server
    metrics_url: str
    admin_token: str
    root: Path
    data_dir: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("metrics")
    data_dir = base / "data"
    data_dir.mkdir(mode=0o700)
    port = free_port()
    (data_dir / "config.toml").write_text(f'[metrics]\nlisten = "127.0.0.1:{port}"\ncache_seconds = 0\n')
    server = Server(data_dir, extra=["--init", "--workers", "1"])
    server.start()
    try:
        token = TOKEN_LINE.search(server.stdout)
        assert token, server.stdout
        assert re.search(rf"Metrics:\s+http://127\.0\.0\.1:{port}/metrics", server.stdout), server.stdout
        root = base / "root.pem"
        root.write_bytes(httpx.get(f"http://127.0.0.1:{server.http_port}/ca/root.pem").content)
        seed(data_dir)
        yield Served(server, f"http://127.0.0.1:{port}/metrics", token.group(1), root, data_dir)
    finally:
        server.stop()


def scrape(url: str) -> Samples:
    response = httpx.get(url)
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def inventory(data_dir: Path) -> tuple[list[CertificateRecord], dt.datetime]:
    platform = open_platform(load_settings({}, data_dir=data_dir))
    try:
        return list(platform.inventory.query(CertificateQuery())), platform.clock.now()
    finally:
        platform.close()


def test_scraped_gauges_match_the_inventory(served: Served) -> None:
    samples = scrape(served.metrics_url)
    records, now = inventory(served.data_dir)
    for status in Status:
        for team in {r.team or "" for r in records}:
            expected = sum(1 for r in records if (r.team or "") == team and r.effective_status(now) is status)
            assert total(samples, "certfleet_certificates", status=status.value, team=team) == expected
    for days in (7, 30):
        expected = sum(
            1
            for r in records
            if r.effective_status(now) is Status.ACTIVE and r.not_after <= now + dt.timedelta(days=days)
        )
        assert total(samples, "certfleet_certificates_expiring", within_days=str(days)) == expected
    roles = {
        dict(labels)["role"]
        for (name, labels) in samples
        if name == "certfleet_ca_certificate_expiry_seconds"
    }
    # the listener's own issuer (the server-identity CA) expires too, and is watched like the others
    assert roles == {"root", "intermediate", "server-identity"}
    assert total(samples, "certfleet_issuance_total", outcome="success") == sum(
        1 for r in records if r.issuer_ca_id
    )


def test_a_revocation_and_an_ocsp_query_are_counted(served: Served, tmp_path: Path) -> None:
    before = scrape(served.metrics_url)
    records, _ = inventory(served.data_dir)
    target = next(r for r in records if r.team == "web" and r.status is Status.ACTIVE)
    https = f"https://127.0.0.1:{served.server.https_port}"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(served.root))) as client:
        response = client.post(
            f"{https}/api/v1/certificates/{target.serial}/revoke",
            json={"reason": "keyCompromise"},
            headers={"Authorization": f"Bearer {served.admin_token}"},
        )
        assert response.status_code == 200, response.text
        assert (
            client.get(
                f"{https}/metrics", headers={"Authorization": f"Bearer {served.admin_token}"}
            ).status_code
            == 404
        )
        chain = client.get(f"http://127.0.0.1:{served.server.http_port}/ca/chain.pem").text
    (tmp_path / "cert.pem").write_bytes(target.certificate().public_bytes(serialization.Encoding.PEM))
    (tmp_path / "issuer.pem").write_text(chain)
    ocsp_url = f"http://127.0.0.1:{served.server.http_port}/ocsp"
    argv = ["openssl", "ocsp", "-issuer", str(tmp_path / "issuer.pem"), "-cert", str(tmp_path / "cert.pem")]
    argv += ["-url", ocsp_url, "-CAfile", str(served.root), "-no_nonce"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert f"{tmp_path / 'cert.pem'}: revoked" in result.stdout, result.stdout + result.stderr
    after = scrape(served.metrics_url)
    assert (
        total(after, "certfleet_revocation_total", outcome="success")
        == total(before, "certfleet_revocation_total", outcome="success") + 1
    )
    assert (
        total(after, "certfleet_ocsp_requests_total", method="POST", code="200")
        == total(before, "certfleet_ocsp_requests_total", method="POST", code="200") + 1
    )
    assert (
        total(after, "certfleet_certificates", status="revoked", team="web")
        == total(before, "certfleet_certificates", status="revoked", team="web") + 1
    )

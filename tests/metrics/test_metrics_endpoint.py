"""``/metrics`` in process: parsed with prometheus_client's own parser and checked against the
seeded inventory; protected by the configured token scope; narrowed to a team token's team;
counters of issuance and revocation from the audit log; ACME and OCSP request counters."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from prometheus_client.parser import text_string_to_metric_families

from certfleet.api import create_public_app
from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.config import load_settings
from certfleet.errors import CertfleetError
from certfleet.inventory import CertificateQuery, Status
from certfleet.x509 import KeyType
from tests.conftest import FakeClock, make_platform
from tests.web.conftest import Browser, issue, token
from tests.web.test_inventory import synthetic

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(browser: Browser, bearer: str | None) -> Samples:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    response = browser.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@pytest.fixture
def seeded(platform: Platform) -> Platform:
    for days, team in ((3, "ops"), (20, "ops"), (50, "web"), (200, "web")):
        issue(platform, f"d{days}.{team}.example.test", days=days, team=team)
    synthetic(platform, 2, start=platform.clock.now() - dt.timedelta(days=10), team="ops")  # expired
    return platform


def test_metrics_match_the_inventory(browser: Browser, seeded: Platform) -> None:
    platform = seeded
    now = platform.clock.now()
    records = list(platform.inventory.query(CertificateQuery()))
    samples = scrape(browser, token(platform))
    for status in Status:
        for team in ("ops", "web"):
            expected = sum(1 for r in records if r.team == team and r.effective_status(now) is status)
            assert total(samples, "certfleet_certificates", status=status.value, team=team) == expected
    for days in (7, 30):
        for team in ("ops", "web"):
            expected = sum(
                1
                for r in records
                if r.team == team
                and r.effective_status(now) is Status.ACTIVE
                and r.not_after <= now + dt.timedelta(days=days)
            )
            assert (
                value(samples, "certfleet_certificates_expiring", team=team, within_days=str(days))
                == expected
            )
    issued = [r for r in records if r.issuer_ca_id]
    earliest = min(r.not_after for r in issued)
    ca_id = issued[0].issuer_ca_id or ""
    ca = next(c for c in platform.authorities.hierarchy() if c.id == ca_id)
    assert value(
        samples, "certfleet_ca_earliest_expiry_seconds", ca_id=ca_id, ca_name=ca.name
    ) == pytest.approx((earliest - now).total_seconds())
    for c in platform.authorities.hierarchy():
        got = value(
            samples, "certfleet_ca_certificate_expiry_seconds", ca_id=c.id, ca_name=c.name, role=c.role
        )
        assert got == pytest.approx((c.not_after - now).total_seconds())
    assert value(samples, "certfleet_issuance_total", outcome="success") == len(issued)


def test_issuance_and_revocation_counters_follow_the_audit_log(
    browser: Browser, seeded: Platform, clock: FakeClock
) -> None:
    platform = seeded
    admin = token(platform)
    before = scrape(browser, admin)
    victim = issue(platform, "victim.example.test")
    platform.revocation.revoke(victim.serial, "keyCompromise", actor="test")
    with pytest.raises(CertfleetError):  # the same key is blocked now: a refused issuance
        key = victim.certificate().public_key()
        platform.issuance.issue(IssuanceRequest("tls-server", key, ("again.example.test",)), actor="test")
    clock.advance(dt.timedelta(seconds=11))  # past the aggregates' cache (counters are never cached)
    after = scrape(browser, admin)
    assert (
        value(after, "certfleet_issuance_total", outcome="success")
        - value(before, "certfleet_issuance_total", outcome="success")
        == 1
    )
    assert (
        value(after, "certfleet_issuance_total", outcome="failure")
        == value(before, "certfleet_issuance_total", outcome="failure") + 1
    )
    assert value(after, "certfleet_revocation_total", outcome="success") == 1


def test_metrics_need_a_token_with_the_configured_scope(
    data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    (data_dir / "config.toml").write_text('[metrics]\nscope = "admin"\n')
    platform = make_platform(data_dir, db_url, clock)
    platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
    browser = Browser(platform)
    try:
        assert browser.get("/metrics").status_code == 401
        assert browser.get("/metrics", headers={"Authorization": "Bearer cf_x_y"}).status_code == 401
        refused = browser.get(
            "/metrics", headers={"Authorization": f"Bearer {token(platform, 'ops', 'read')}"}
        )
        assert refused.status_code == 403 and "admin is required" in refused.json()["detail"]
        assert (
            browser.get("/metrics", headers={"Authorization": f"Bearer {token(platform)}"}).status_code == 200
        )
    finally:
        browser.close()
        platform.close()


def test_a_team_token_sees_its_team_only(browser: Browser, seeded: Platform) -> None:
    samples = scrape(browser, token(seeded, "web", "read"))
    teams = {dict(labels).get("team") for (name, labels) in samples if name == "certfleet_certificates"}
    assert teams == {"web"}
    assert total(samples, "certfleet_certificates") == 2


def test_a_separate_listener_takes_metrics_off_the_https_listener(
    data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    (data_dir / "config.toml").write_text('[metrics]\nlisten = "127.0.0.1:9464"\n')
    platform = make_platform(data_dir, db_url, clock)
    browser = Browser(platform)
    try:
        response = browser.get("/metrics", headers={"Authorization": f"Bearer {token(platform)}"})
        assert response.status_code == 404 and "own listener" in response.json()["detail"]
    finally:
        browser.close()
        platform.close()


@pytest.mark.parametrize(
    ("table", "detail"),
    [
        ('scope = "root"', "metrics.scope must be one of 'read', 'issue', 'revoke', 'admin'"),
        ('listen = "nowhere"', "bad listen address"),
        ("cache_seconds = -1", "cache_seconds must be"),
        ("colour = 1", "unknown key .metrics. colour"),
    ],
)
def test_bad_metrics_settings_are_precise(tmp_path: Path, table: str, detail: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[metrics]\n{table}\n")
    with pytest.raises(CertfleetError, match=detail):
        load_settings({}, data_dir=tmp_path)


class PublicClient:
    """The plain-HTTP app (CRLs, OCSP) in process, called synchronously."""

    def __init__(self, platform: Platform) -> None:
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=create_public_app(platform))
        self._client = httpx.AsyncClient(transport=transport, base_url="http://ca.test")

    def post(self, url: str, body: bytes, content_type: str) -> httpx.Response:
        return self._runner.run(self._client.post(url, content=body, headers={"Content-Type": content_type}))

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


@pytest.fixture
def public(platform: Platform) -> Iterator[PublicClient]:
    client = PublicClient(platform)
    yield client
    client.close()


def test_acme_and_ocsp_requests_are_counted_and_timed(
    browser: Browser, platform: Platform, public: PublicClient
) -> None:
    record = issue(platform, "ocsp.example.test")
    issuer = next(c for c in platform.authorities.hierarchy() if c.id == record.issuer_ca_id)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(record.certificate(), issuer.certificate, hashes.SHA1())
        .build()
    )
    body = request.public_bytes(serialization.Encoding.DER)
    for _ in range(2):
        answer = public.post("/ocsp", body, "application/ocsp-request")
        assert answer.status_code == 200
    assert browser.get("/acme/directory").status_code == 200
    samples = scrape(browser, token(platform))
    assert value(samples, "certfleet_ocsp_requests_total", method="POST", code="200") == 2
    assert value(samples, "certfleet_ocsp_request_duration_seconds_count", method="POST") == 2
    assert (
        value(samples, "certfleet_acme_requests_total", endpoint="directory", method="GET", code="200") == 1
    )
    assert value(samples, "certfleet_acme_request_duration_seconds_count", endpoint="directory") == 1

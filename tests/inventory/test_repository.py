"""Inventory filters on SQLite and PostgreSQL: expiring, status (expired derived from the
clock), issuer, SAN, team, and keyset pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.inventory import CertificateQuery, CertificateRecord, Status
from certfleet.x509 import KeyType, fingerprint_sha256, generate_private_key, to_pem
from tests.conftest import FakeClock, make_platform
from tests.services.snapshot import private_database
from tests.x509.factories import external_certificate

DAY = dt.timedelta(days=1)


@dataclass
class Fleet:
    web: CertificateRecord  # issued, tls-server, 90 days, team web
    client: CertificateRecord  # issued, tls-client, 10 days, team db
    soon: CertificateRecord  # imported, expires in 5 days, no team
    old: CertificateRecord  # imported, expired 10 days ago
    revoked: CertificateRecord  # issued, then marked revoked


def _issue(
    platform: Platform, profile: str, names: tuple[str, ...], team: str, days: int
) -> CertificateRecord:
    key = generate_private_key(KeyType.EC_P256)
    request = IssuanceRequest(profile, key.public_key(), names, None, days)
    return platform.issuance.issue(request, actor="t", team=team).record


def _import(platform: Platform, cn: str, not_before: dt.datetime, days: int) -> CertificateRecord:
    cert = external_certificate(cn, not_before, days)
    platform.inventory.import_bytes(to_pem([cert]).encode(), cn, actor="t")
    return platform.inventory.find(fingerprint_sha256(cert))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fleet_platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Platform, FakeClock, Fleet]]:
    """One inventory per module and backend; the tests only read it (and move the clock,
    which ``platform`` puts back)."""
    clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    data_dir = tmp_path_factory.mktemp("fleet") / "data"
    pg_url = request.getfixturevalue("pg_database_url") if request.param == "postgresql" else None
    with private_database(request.param, data_dir, pg_url) as url:
        platform = make_platform(data_dir, url, clock)
        try:
            platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
            now = clock.now()
            web = _issue(platform, "tls-server", ("www.example.com", "192.0.2.1"), "web", 90)
            client = _issue(platform, "tls-client", ("alice.example.com",), "db", 10)
            soon = _import(platform, "soon.example.net", now - 25 * DAY, 30)
            old = _import(platform, "old.example.net", now - 40 * DAY, 30)
            revoked = _issue(platform, "tls-server", ("gone.example.com",), "web", 30)
            with platform.database.engine.begin() as conn:
                conn.execute(
                    text("UPDATE certificates SET status = 'revoked' WHERE serial = :s"),
                    {"s": revoked.serial},
                )
            yield platform, clock, Fleet(web, client, soon, old, revoked)
        finally:
            platform.close()


@pytest.fixture
def platform(fleet_platform: tuple[Platform, FakeClock, Fleet]) -> Iterator[Platform]:
    platform, clock, _ = fleet_platform
    start = clock.now()
    yield platform
    clock.set(start)


@pytest.fixture
def clock(fleet_platform: tuple[Platform, FakeClock, Fleet]) -> FakeClock:
    return fleet_platform[1]


@pytest.fixture
def fleet(fleet_platform: tuple[Platform, FakeClock, Fleet]) -> Fleet:
    return fleet_platform[2]


def _serials(platform: Platform, **filters: object) -> set[str]:
    return {r.serial for r in platform.inventory.query(CertificateQuery(**filters))}  # type: ignore[arg-type]


def test_no_filter_lists_everything_in_id_order(platform: Platform, fleet: Fleet) -> None:
    records = platform.inventory.query(CertificateQuery())
    ids = [r.id for r in records]
    assert ids == sorted(ids)
    assert {r.serial for r in records} == {
        fleet.web.serial,
        fleet.client.serial,
        fleet.soon.serial,
        fleet.old.serial,
        fleet.revoked.serial,
    }


def test_expiring_within(platform: Platform, fleet: Fleet) -> None:
    assert _serials(platform, expiring_within=7 * DAY) == {fleet.soon.serial}
    assert _serials(platform, expiring_within=30 * DAY) == {fleet.soon.serial, fleet.client.serial}
    # Revoked and already expired certificates are not "expiring".
    assert _serials(platform, expiring_within=365 * DAY) == {
        fleet.soon.serial,
        fleet.client.serial,
        fleet.web.serial,
    }


def test_status_filters_with_expired_derived_from_the_clock(
    platform: Platform, fleet: Fleet, clock: FakeClock
) -> None:
    assert _serials(platform, status=Status.ACTIVE) == {
        fleet.web.serial,
        fleet.client.serial,
        fleet.soon.serial,
    }
    assert _serials(platform, status=Status.EXPIRED) == {fleet.old.serial}
    assert _serials(platform, status=Status.REVOKED) == {fleet.revoked.serial}
    assert _serials(platform, status=Status.SUPERSEDED) == set()
    clock.advance(11 * DAY)  # the 10-day client certificate and the 5-day import run out
    assert _serials(platform, status=Status.EXPIRED) == {
        fleet.old.serial,
        fleet.client.serial,
        fleet.soon.serial,
    }
    assert _serials(platform, status=Status.ACTIVE) == {fleet.web.serial}
    statuses = {
        r.serial: r.to_dict(clock.now())["status"] for r in platform.inventory.query(CertificateQuery())
    }
    assert statuses[fleet.client.serial] == "expired"
    assert statuses[fleet.revoked.serial] == "revoked"


def test_expiry_boundary_is_inclusive(platform: Platform, fleet: Fleet, clock: FakeClock) -> None:
    clock.set(fleet.soon.not_after)  # RFC 5280 4.1.2.5: still valid at notAfter
    assert fleet.soon.serial in _serials(platform, status=Status.ACTIVE)
    assert fleet.soon.serial in _serials(platform, expiring_within=dt.timedelta(0))
    clock.set(fleet.soon.not_after + dt.timedelta(seconds=1))
    assert fleet.soon.serial in _serials(platform, status=Status.EXPIRED)


def test_issuer_by_dn_substring_or_ca_id(platform: Platform, fleet: Fleet) -> None:
    ca_id = platform.authorities.issuing_authority().issuer.id
    issued = {fleet.web.serial, fleet.client.serial, fleet.revoked.serial}
    assert _serials(platform, issuer=ca_id) == issued
    assert _serials(platform, issuer="Other CA") == {fleet.soon.serial, fleet.old.serial}
    assert _serials(platform, issuer="other ca") == {fleet.soon.serial, fleet.old.serial}  # case-insensitive
    assert _serials(platform, issuer="Issuing CA") == issued
    # LIKE wildcards in the text are literal.
    assert _serials(platform, issuer="%") == set()
    assert _serials(platform, issuer="_") == set()


@pytest.mark.parametrize(
    ("san", "which"),
    [
        ("www.example.com", "web"),
        ("WWW.Example.com", "web"),
        ("192.0.2.1", "web"),
        ("alice.example.com", "client"),
        ("example.com", None),  # exact names, not suffixes
        ("%", None),
    ],
)
def test_san_is_an_exact_case_insensitive_match(
    platform: Platform, fleet: Fleet, san: str, which: str | None
) -> None:
    expected = {getattr(fleet, which).serial} if which else set()
    assert _serials(platform, san=san) == expected


def test_team(platform: Platform, fleet: Fleet) -> None:
    assert _serials(platform, team="web") == {fleet.web.serial, fleet.revoked.serial}
    assert _serials(platform, team="db") == {fleet.client.serial}
    assert _serials(platform, team="nobody") == set()


def test_filters_combine(platform: Platform, fleet: Fleet) -> None:
    assert _serials(platform, team="web", status=Status.ACTIVE) == {fleet.web.serial}
    assert _serials(platform, team="web", san="gone.example.com") == {fleet.revoked.serial}
    assert _serials(platform, team="db", expiring_within=7 * DAY) == set()


def test_keyset_pages_cover_everything_once(platform: Platform, fleet: Fleet) -> None:
    seen: list[str] = []
    after: int | None = None
    while True:
        page = platform.inventory.query(CertificateQuery(limit=2, after_id=after))
        seen.extend(r.serial for r in page)
        if len(page) < 2:
            break
        after = page[-1].id
    assert len(seen) == len(set(seen)) == 5

"""Importing certificates into the inventory, and finding one by serial or fingerprint."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.access import Principal, Scope
from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.errors import NotFound
from certfleet.inventory import Source, Status
from certfleet.x509 import KeyType, fingerprint_sha256, generate_private_key, to_pem
from tests.conftest import FakeClock
from tests.services.snapshot import audit_actions, table_counts
from tests.x509.factories import external_certificate


def test_import_pem_bundle_and_der(platform: Platform, clock: FakeClock) -> None:
    a = external_certificate("a.example.com", clock.now())
    b = external_certificate("b.example.com", clock.now())
    c = external_certificate("c.example.com", clock.now())
    bundle = platform.inventory.import_bytes(to_pem([a, b]).encode(), "bundle.pem", actor="cli", team="ops")
    single = platform.inventory.import_bytes(c.public_bytes(Encoding.DER), "c.der", actor="cli")
    assert (bundle.added, bundle.duplicates, bundle.error) == (2, 0, None)
    assert (single.added, single.duplicates, single.error) == (1, 0, None)
    record = platform.inventory.find(fingerprint_sha256(a))
    assert record.source is Source.IMPORTED
    assert record.team == "ops"
    assert record.issuer == "CN=Other CA"
    assert record.profile is None and record.issuer_ca_id is None
    assert record.sans == ("a.example.com",)
    assert platform.inventory.find(fingerprint_sha256(c)).team is None
    assert audit_actions(platform.database).count("certificate.imported") == 3


def test_import_deduplicates_by_fingerprint_and_touches_last_seen(
    platform: Platform, clock: FakeClock
) -> None:
    a = external_certificate("a.example.com", clock.now())
    first_seen = clock.now()
    platform.inventory.import_bytes(to_pem([a]).encode(), "a.pem", actor="cli")
    clock.advance(dt.timedelta(hours=5))
    again = platform.inventory.import_bytes(to_pem([a, a]).encode(), "a-twice.pem", actor="cli")
    assert (again.added, again.duplicates) == (0, 2)
    record = platform.inventory.find(fingerprint_sha256(a))
    assert record.first_seen == first_seen
    assert record.last_seen == clock.now()
    assert table_counts(platform.database)["certificates"] == 1


def test_same_certificate_twice_in_one_bundle_is_added_once(platform: Platform, clock: FakeClock) -> None:
    a = external_certificate("a.example.com", clock.now())
    outcome = platform.inventory.import_bytes(to_pem([a, a]).encode(), "dup.pem", actor="cli")
    assert (outcome.added, outcome.duplicates) == (1, 1)


def test_importing_an_issued_certificate_is_a_duplicate(platform: Platform) -> None:
    key = generate_private_key(KeyType.EC_P256)
    issued = platform.issuance.issue(
        IssuanceRequest("tls-server", key.public_key(), ("www.example.com",)), actor="t", team="web"
    )
    outcome = platform.inventory.import_bytes(
        to_pem(issued.issued.fullchain).encode(), "full.pem", actor="cli"
    )
    # The leaf is known; the intermediate is new to the inventory.
    assert (outcome.added, outcome.duplicates) == (1, 1)
    leaf = platform.inventory.find(issued.record.fingerprint_sha256)
    assert (leaf.source, leaf.team) == (Source.ISSUED, "web")


@pytest.mark.parametrize(
    "data", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_malformed_import_is_an_outcome_not_an_exception(platform: Platform, data: bytes) -> None:
    before = table_counts(platform.database)
    audit = audit_actions(platform.database)
    outcome = platform.inventory.import_bytes(data, "bad.pem", actor="cli")
    assert outcome.added == 0 and outcome.error is not None
    assert outcome.error.startswith("bad.pem: ")
    assert "\n" not in outcome.error
    assert table_counts(platform.database) == before
    assert audit_actions(platform.database) == audit


def test_imported_expired_certificate_shows_as_expired(platform: Platform, clock: FakeClock) -> None:
    old = external_certificate("old.example.com", clock.now() - dt.timedelta(days=100), days=30)
    platform.inventory.import_bytes(to_pem([old]).encode(), "old.pem", actor="cli")
    record = platform.inventory.find(fingerprint_sha256(old))
    assert record.status is Status.ACTIVE  # stored
    assert record.effective_status(clock.now()) is Status.EXPIRED  # derived from the clock
    assert record.to_dict(clock.now())["status"] == "expired"


def test_find_by_serial_or_fingerprint_in_any_spelling(platform: Platform, clock: FakeClock) -> None:
    cert = external_certificate("a.example.com", clock.now(), serial=0x00AB_CDEF_0123)
    platform.inventory.import_bytes(to_pem([cert]).encode(), "a.pem", actor="cli", team="web")
    fingerprint = fingerprint_sha256(cert)
    colon = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    for key in ("abcdef0123", "ABCDEF0123", "00abcdef0123", "ab:cd:ef:01:23", fingerprint, colon):
        assert platform.inventory.find(key).fingerprint_sha256 == fingerprint, key
    with pytest.raises(NotFound, match="no certificate with serial or fingerprint 'ffff'"):
        platform.inventory.find("ffff")


def test_another_teams_certificate_is_not_found(platform: Platform, clock: FakeClock) -> None:
    cert = external_certificate("a.example.com", clock.now())
    platform.inventory.import_bytes(to_pem([cert]).encode(), "a.pem", actor="cli", team="web")
    fingerprint = fingerprint_sha256(cert)
    web = Principal("token:1", "web", Scope.READ)
    db = Principal("token:2", "db", Scope.READ)
    admin = Principal("token:3", "admin", Scope.ADMIN)
    assert platform.inventory.find(fingerprint, web).team == "web"
    assert platform.inventory.find(fingerprint, admin).team == "web"
    with pytest.raises(NotFound):
        platform.inventory.find(fingerprint, db)

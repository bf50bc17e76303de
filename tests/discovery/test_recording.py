"""Recording a scan in bulk, on SQLite and PostgreSQL: the write costs the same few statements
however many certificates a scan found, and keeps what the per-row write guaranteed
(last-seen refreshed without duplicates, one event per new leaf, one audit entry per run, an
unstorable certificate reported without losing the rest)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID
from sqlalchemy import event, text

from certfleet.app import Platform
from certfleet.discovery import FileScanOptions, fingerprint
from certfleet.discovery.records import FindingQuery, LocationKind, ScanStatus
from certfleet.inventory import CertificateQuery, CertificateRecord, Source
from certfleet.services.discovery import FileScanRequest, ScanReport, parse_trust_bundle
from certfleet.x509 import CertificateFacts
from tests.conftest import FakeClock
from tests.discovery.pki import Pki, key_pem, pem


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki("Recording")


def _scan(platform: Platform, directory: Path, pki: Pki) -> ScanReport:
    request = FileScanRequest(
        (str(directory),), FileScanOptions(), trust=parse_trust_bundle(pem(pki.root.cert), "t"), team="web"
    )
    return platform.discovery.scan_files(request, actor="test")


def _fleet(pki: Pki, directory: Path, count: int) -> list[x509.Certificate]:
    """``count`` files, each a new leaf and the intermediate they all share."""
    directory.mkdir()
    leaves = [pki.leaf([f"host{i}.recording.test"]).cert for i in range(count)]
    for i, leaf in enumerate(leaves):
        (directory / f"{i}.pem").write_bytes(pem(leaf, pki.intermediate.cert))
    return leaves


@contextmanager
def _statements(platform: Platform) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(platform.database.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(platform.database.engine, "before_cursor_execute", count)


def _rows(platform: Platform, sql: str) -> list[Any]:
    with platform.database.engine.connect() as conn:
        return list(conn.execute(text(sql)))


def test_the_write_does_not_grow_with_the_certificates_found(
    platform: Platform, pki: Pki, tmp_path: Path
) -> None:
    # Warm up: the intermediate and the run's first statements are the same for both sizes.
    _fleet(pki, tmp_path / "warm", 1)
    _scan(platform, tmp_path / "warm", pki)
    _fleet(pki, tmp_path / "few", 3)
    _fleet(pki, tmp_path / "many", 40)
    with _statements(platform) as few:
        assert _scan(platform, tmp_path / "few", pki).run.certificates_new == 3
    with _statements(platform) as many:
        assert _scan(platform, tmp_path / "many", pki).run.certificates_new == 40
    # One statement per kind of row (executemany), not one or more per certificate.
    assert len(many) == len(few), f"{len(few)} statements for 3 certificates, {len(many)} for 40"


def test_a_rescan_refreshes_last_seen_without_duplicates(
    platform: Platform, pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    leaves = _fleet(pki, tmp_path / "fleet", 30)
    first_at = clock.now()
    first = _scan(platform, tmp_path / "fleet", pki)
    assert (first.run.certificates_found, first.run.certificates_new) == (31, 31)
    clock.advance(dt.timedelta(hours=3))
    again = _scan(platform, tmp_path / "fleet", pki)
    assert (again.run.status, again.run.certificates_found, again.run.certificates_new) == (
        ScanStatus.COMPLETED,
        31,
        0,
    )
    records = platform.inventory.query(CertificateQuery())
    assert len(records) == 31
    assert {(r.source, r.team, r.first_seen, r.last_seen) for r in records} == {
        (Source.DISCOVERED, "web", first_at, clock.now())
    }
    leaf_places = {
        fingerprint(leaf): [
            (Path(loc.location).name, loc.kind, loc.first_seen, loc.last_seen, loc.gone_at)
            for loc in platform.discovery.locations(platform.inventory.find(fingerprint(leaf)))
        ]
        for leaf in leaves
    }
    assert leaf_places == {
        fingerprint(leaf): [(f"{i}.pem", LocationKind.FILE, first_at, clock.now(), None)]
        for i, leaf in enumerate(leaves)
    }
    shared = platform.discovery.locations(platform.inventory.find(fingerprint(pki.intermediate.cert)))
    assert sorted(Path(loc.location).name for loc in shared) == sorted(f"{i}.pem" for i in range(30))
    assert {loc.last_seen for loc in shared} == {clock.now()}
    # One discovered-unknown event per new leaf (none for the intermediate, none on rescan),
    # each naming where its certificate is, and one audit entry per run.
    events = _rows(platform, "SELECT payload_json FROM notification_events WHERE kind = 'discovered-unknown'")
    payloads = [json.loads(row[0]) for row in events]
    assert sorted(p["certificate"]["fingerprint_sha256"] for p in payloads) == sorted(
        fingerprint(leaf) for leaf in leaves
    )
    assert all(len(p["locations"]) == 1 and p["details"]["reasons"] == ["new"] for p in payloads)
    audit = [e for e in platform.audit.entries() if e.action == "discovery.scan"]
    assert [(e.subject, e.details["certificates_new"]) for e in audit] == [
        (first.run.id, 31),
        (again.run.id, 0),
    ]
    assert platform.audit.verify().ok


def _unparsable_leaf(pki: Pki) -> x509.Certificate:
    """A certificate whose SAN extension is not DER: it parses, but the inventory cannot hold
    its names."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = pki.now
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broken.recording.test")]))
        .issuer_name(pki.intermediate.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x01\x01"),
            critical=False,
        )
        .sign(pki.intermediate.key, hashes.SHA256())
    )


def test_an_unstorable_certificate_is_reported_and_the_rest_recorded(
    platform: Platform, pki: Pki, tmp_path: Path
) -> None:
    broken = _unparsable_leaf(pki)
    with pytest.raises(ValueError):
        CertificateFacts.of(broken)
    leaves = _fleet(pki, tmp_path / "fleet", 5)
    (tmp_path / "fleet" / "broken.pem").write_bytes(pem(broken, pki.intermediate.cert))
    report = _scan(platform, tmp_path / "fleet", pki)
    assert (report.run.status, report.run.certificates_found, report.run.certificates_new) == (
        ScanStatus.COMPLETED,
        6,
        6,
    )
    stored = {r.fingerprint_sha256 for r in platform.inventory.query(CertificateQuery())}
    assert stored == {fingerprint(c) for c in [*leaves, pki.intermediate.cert]}
    _, errors = platform.discovery.get_scan(report.run.id)
    assert [(Path(e.target).name, e.status, e.reason) for e in errors] == [
        ("broken.pem", "unstorable", f"certificate {fingerprint(broken)} cannot be stored")
    ]
    # The intermediate presented beside it is still recorded at that file.
    shared = platform.discovery.locations(platform.inventory.find(fingerprint(pki.intermediate.cert)))
    assert "broken.pem" in {Path(loc.location).name for loc in shared}


# PostgreSQL only: SQLite serialises writers, so the race cannot happen there.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_certificate_another_scan_added_meanwhile_is_known_not_a_conflict(
    platform: Platform, pki: Pki, clock: FakeClock
) -> None:
    """Two scans on PostgreSQL may both find a certificate new; the second to insert it takes
    the row the first committed instead of failing its whole scan."""
    assert platform.database.engine.dialect.name == "postgresql"
    leaf = pki.leaf(["raced.recording.test"]).cert
    record = CertificateRecord.from_facts(
        CertificateFacts.of(leaf), source=Source.DISCOVERED, seen_at=clock.now()
    )
    with platform.store.unit_of_work() as late:
        assert late.locations.known_certificates([record.fingerprint_sha256], clock.now()) == {}
        with platform.store.unit_of_work() as early:
            early_ids, early_new = early.locations.add_certificates([record])
        ids, inserted = late.locations.add_certificates([record])
    assert early_new == {record.fingerprint_sha256}
    assert (ids, inserted) == (early_ids, set())
    assert len(platform.inventory.query(CertificateQuery())) == 1


def test_a_finding_refreshed_resolved_and_raised_again_is_one_row(
    platform: Platform, pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    key_file = tmp_path / "keys" / "service.key"
    key_file.parent.mkdir()
    key_file.write_bytes(key_pem(pki.leaf(["key.recording.test"]).key))
    key_file.chmod(0o600)

    def open_findings() -> list[tuple[str, dt.datetime, dt.datetime, dt.datetime | None]]:
        return sorted(
            (f.code.value, f.first_seen, f.last_seen, f.resolved_at)
            for f in platform.discovery.findings(FindingQuery(include_resolved=True))
            if f.location == str(key_file)
        )

    raised_at = clock.now()
    _scan(platform, key_file.parent, pki)
    assert open_findings() == [("unencrypted-private-key", raised_at, raised_at, None)]
    # Still there: refreshed, its first sighting kept.
    clock.advance(dt.timedelta(hours=1))
    _scan(platform, key_file.parent, pki)
    assert open_findings() == [("unencrypted-private-key", raised_at, clock.now(), None)]
    # Gone: resolved, not deleted.
    content = key_file.read_bytes()
    key_file.unlink()
    clock.advance(dt.timedelta(hours=1))
    _scan(platform, key_file.parent, pki)
    resolved_at = clock.now()
    assert open_findings() == [
        ("unencrypted-private-key", raised_at, resolved_at - dt.timedelta(hours=1), resolved_at)
    ]
    # Back again: the same row reopened as a new occurrence.
    key_file.write_bytes(content)
    key_file.chmod(0o600)
    clock.advance(dt.timedelta(hours=1))
    _scan(platform, key_file.parent, pki)
    assert open_findings() == [("unencrypted-private-key", clock.now(), clock.now(), None)]


def test_a_renewal_day_marks_the_replaced_certificates_gone_in_bulk(
    platform: Platform, pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    sizes = {"few": 3, "many": 40}
    old = {name: _fleet(pki, tmp_path / name, count) for name, count in sizes.items()}
    for name in sizes:
        _scan(platform, tmp_path / name, pki)
    # Every file now holds a renewed leaf: each old one is gone from its file.
    for name, count in sizes.items():
        for i in range(count):
            renewed = pki.leaf([f"host{i}.{name}.recording.test"]).cert
            (tmp_path / name / f"{i}.pem").write_bytes(pem(renewed, pki.intermediate.cert))
    clock.advance(dt.timedelta(days=1))
    statements = {}
    for name in sizes:
        with _statements(platform) as seen:
            assert _scan(platform, tmp_path / name, pki).run.certificates_new == sizes[name]
        statements[name] = len(seen)
    assert statements["many"] == statements["few"], statements
    for leaf in old["many"]:
        places = platform.discovery.locations(platform.inventory.find(fingerprint(leaf)))
        assert [loc.gone_at for loc in places] == [clock.now()]

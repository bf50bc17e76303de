"""The discovery service on SQLite and PostgreSQL: upserts, locations that come and go,
findings that open and resolve, and recorded scan runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.discovery import FileScanOptions, NetScanOptions, fingerprint
from certfleet.discovery.records import FindingQuery, LocationKind, ScanStatus
from certfleet.inventory import CertificateQuery, Source
from certfleet.services.discovery import FileScanRequest, NetScanRequest, parse_trust_bundle
from certfleet.x509 import KeyType, generate_private_key
from tests.conftest import FakeClock
from tests.discovery import servers
from tests.discovery.pki import Pki, key_pem, pem


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki("Service")


def _files(platform: Platform, *paths: Path, team: str | None = None, trust: bytes | None = None) -> object:
    request = FileScanRequest(
        tuple(str(p) for p in paths),
        FileScanOptions(),
        trust=parse_trust_bundle(trust, "t") if trust else (),
        team=team,
    )
    return platform.discovery.scan_files(request, actor="test")


def _codes(platform: Platform, location: str) -> set[str]:
    return {f.code.value for f in platform.discovery.findings(FindingQuery()) if f.location == location}


def test_files_upsert_dedup_and_locations(
    platform: Platform, pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    leaf = pki.leaf(["svc.test"])
    (tmp_path / "a.pem").write_bytes(pem(leaf.cert, pki.intermediate.cert))
    (tmp_path / "b.pem").write_bytes(pem(leaf.cert))
    report = _files(platform, tmp_path, team="web", trust=pem(pki.root.cert))
    assert (report.run.status, report.run.certificates_found, report.run.certificates_new) == (  # type: ignore[attr-defined]
        ScanStatus.COMPLETED,
        2,
        2,
    )
    record = platform.inventory.find(fingerprint(leaf.cert))
    assert (record.source, record.team) == (Source.DISCOVERED, "web")
    places = {
        (loc.kind, Path(loc.location).name, loc.gone_at) for loc in platform.discovery.locations(record)
    }
    assert places == {(LocationKind.FILE, "a.pem", None), (LocationKind.FILE, "b.pem", None)}
    # Rescanning finds nothing new and refreshes last_seen.
    clock.advance(dt.timedelta(hours=1))
    again = _files(platform, tmp_path, trust=pem(pki.root.cert))
    assert again.run.certificates_new == 0  # type: ignore[attr-defined]
    assert {loc.last_seen for loc in platform.discovery.locations(record)} == {clock.now()}
    assert len(platform.inventory.query(CertificateQuery())) == 2


def test_a_certificate_we_issued_keeps_its_source(platform: Platform, tmp_path: Path) -> None:
    key = generate_private_key(KeyType.EC_P256)
    issued = platform.issuance.issue(
        IssuanceRequest("tls-server", key.public_key(), ("ours.test",)), actor="t"
    )
    (tmp_path / "ours.pem").write_bytes(pem(*issued.issued.fullchain))
    report = _files(platform, tmp_path)
    record = platform.inventory.find(issued.record.serial)
    assert record.source is Source.ISSUED
    assert [loc.location for loc in platform.discovery.locations(record)] == [str(tmp_path / "ours.pem")]
    # certfleet's own CA is trusted: nothing to report about its certificate.
    assert report.findings == ()  # type: ignore[attr-defined]


def test_gone_files_are_marked_not_deleted(
    platform: Platform, pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    first, second = pki.leaf(["one.test"]), pki.leaf(["two.test"])
    (tmp_path / "one.pem").write_bytes(pem(first.cert))
    (tmp_path / "two.pem").write_bytes(pem(second.cert))
    (tmp_path / "one.key").write_bytes(key_pem(first.key))
    (tmp_path / "one.key").chmod(0o644)
    _files(platform, tmp_path)
    assert _codes(platform, str(tmp_path / "one.key")) == {
        "unencrypted-private-key",
        "private-key-permissions",
    }
    (tmp_path / "one.pem").unlink()
    (tmp_path / "one.key").unlink()
    (tmp_path / "two.pem").write_bytes(pem(first.cert))  # first moved into two.pem
    clock.advance(dt.timedelta(days=1))
    _files(platform, tmp_path)
    first_locations = {
        Path(loc.location).name: loc.gone_at
        for loc in platform.discovery.locations(platform.inventory.find(fingerprint(first.cert)))
    }
    assert first_locations == {"one.pem": clock.now(), "two.pem": None}
    second_locations = platform.discovery.locations(platform.inventory.find(fingerprint(second.cert)))
    assert [loc.gone_at for loc in second_locations] == [clock.now()]
    # The key file is gone: its findings are resolved, not deleted.
    assert _codes(platform, str(tmp_path / "one.key")) == set()
    resolved = [
        f
        for f in platform.discovery.findings(FindingQuery(include_resolved=True))
        if f.location.endswith("one.key")
    ]
    assert resolved and all(f.resolved_at == clock.now() for f in resolved)


def test_key_reuse_across_certificates(platform: Platform, pki: Pki, tmp_path: Path) -> None:
    one = pki.leaf(["reuse.test"])
    renewed = pki.leaf(["reuse.test"], key=one.key)
    (tmp_path / "old.pem").write_bytes(pem(one.cert))
    (tmp_path / "new.pem").write_bytes(pem(renewed.cert))
    _files(platform, tmp_path, trust=pem(pki.root.cert))
    assert "key-reuse" in _codes(platform, str(tmp_path / "old.pem"))
    assert "key-reuse" in _codes(platform, str(tmp_path / "new.pem"))


def test_endpoint_rescans_mark_gone_and_resolve(
    platform: Platform, pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    good, wrong = pki.leaf(["127.0.0.1"]), pki.leaf(["elsewhere.test"])
    for name, issued in (("good", good), ("wrong", wrong)):
        (tmp_path / f"{name}.pem").write_bytes(pem(issued.cert, pki.intermediate.cert))
        (tmp_path / f"{name}.key").write_bytes(key_pem(issued.key))
    server = servers.SwappableTls(tmp_path / "wrong.pem", tmp_path / "wrong.key")
    request = NetScanRequest(
        (server.address,), options=NetScanOptions(timeout_seconds=5), trust=(pki.root.cert,), team="web"
    )
    try:
        first = platform.discovery.scan_network(request, actor="test")
        assert {f.code.value for f in first.findings} == {"hostname-mismatch"}
        server.use(tmp_path / "good.pem", tmp_path / "good.key")
        clock.advance(dt.timedelta(hours=2))
        second = platform.discovery.scan_network(request, actor="test")
        assert second.findings == ()
        swapped_at = clock.now()
    finally:
        server.stop()
    wrong_at = platform.discovery.locations(platform.inventory.find(fingerprint(wrong.cert)))
    assert [(loc.location, loc.gone_at) for loc in wrong_at] == [(server.address, swapped_at)]
    assert _codes(platform, server.address) == set()  # the mismatch is resolved
    # A refused port is definite: the certificate is no longer there.
    clock.advance(dt.timedelta(hours=1))
    refused = platform.discovery.scan_network(request, actor="test")
    assert (refused.run.failed, refused.run.succeeded) == (1, 0)
    good_at = platform.discovery.locations(platform.inventory.find(fingerprint(good.cert)))
    assert [loc.gone_at for loc in good_at] == [clock.now()]
    run, errors = platform.discovery.get_scan(refused.run.id)
    assert [(e.status, e.reason) for e in errors] == [("refused", "connection refused")]
    assert run.finished_at == clock.now()


def test_an_interrupt_just_after_the_run_is_recorded_still_ends_it(platform: Platform) -> None:
    """Ctrl-C can land once the run's 'running' row is committed but before the scan's own
    handler covers it (as its connection returns to the pool: a flaky CLI test on
    PostgreSQL). The run ends failed, 'interrupted', all the same; the interrupt goes on."""
    # Given a Ctrl-C arriving right after the first commit (the run recorded as running)
    interrupts = [KeyboardInterrupt()]

    def ctrl_c(session: Session) -> None:
        if interrupts:
            raise interrupts.pop()

    event.listen(Session, "after_commit", ctrl_c)
    request = NetScanRequest(("127.0.0.1:1",), options=NetScanOptions(timeout_seconds=1))
    try:
        # When a scan starts
        with pytest.raises(KeyboardInterrupt):
            platform.discovery.scan_network(request, actor="test")
    finally:
        event.remove(Session, "after_commit", ctrl_c)

    # Then its run is not left running
    with platform.database.engine.connect() as conn:
        runs = conn.execute(text("SELECT status, error FROM scan_runs")).all()
    assert [tuple(r) for r in runs] == [("failed", "interrupted")]

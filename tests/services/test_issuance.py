"""Issuance as a transaction: validate, reserve the serial (committed), sign, record, audit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.access import NamePattern, Principal, Scope
from certfleet.app import Platform
from certfleet.ca import IssuanceRequest, ValidatedRequest
from certfleet.errors import Conflict, Forbidden
from certfleet.inventory import CertificateRecord, Source, Status
from certfleet.lifecycle.issuance import ClaimResult, IssuanceLedger, IssuedEntry, SerialClaim
from certfleet.lifecycle.notifications.events import Event
from certfleet.services import IssuanceService
from certfleet.x509 import BadName, KeyType, fingerprint_sha256, generate_private_key, serial_hex
from tests.conftest import FakeClock, make_platform
from tests.services.snapshot import audit_actions, rows, table_counts


def _request(*names: str, profile: str = "tls-server", cn: str | None = None) -> IssuanceRequest:
    key = generate_private_key(KeyType.EC_P256)
    return IssuanceRequest(profile, key.public_key(), names or ("www.example.com",), cn)


def test_issue_records_every_field(platform: Platform, clock: FakeClock) -> None:
    result = platform.issuance.issue(
        _request("www.example.com", "192.0.2.5", cn="www.example.com"),
        actor="alice",
        team="web",
        tags=("prod", "edge"),
    )
    cert = result.issued.certificate
    issuer = platform.authorities.issuing_authority().issuer
    stored = platform.inventory.find(result.record.serial)
    assert stored == result.record
    assert stored.id is not None
    assert stored.serial == serial_hex(cert.serial_number)
    assert stored.fingerprint_sha256 == fingerprint_sha256(cert)
    assert stored.subject == "CN=www.example.com"
    assert stored.common_name == "www.example.com"
    assert stored.sans == ("www.example.com", "192.0.2.5")
    assert stored.issuer == issuer.certificate.subject.rfc4514_string()
    assert stored.issuer_ca_id == issuer.id
    assert (stored.not_before, stored.not_after) == (cert.not_valid_before_utc, cert.not_valid_after_utc)
    assert (stored.key_algorithm, stored.key_size) == ("ec", 256)
    assert stored.signature_algorithm == "ecdsa-with-SHA256"
    assert stored.profile == "tls-server"
    assert stored.source is Source.ISSUED
    assert stored.status is Status.ACTIVE
    assert stored.team == "web"
    assert stored.tags == ("prod", "edge")
    assert stored.first_seen == stored.last_seen == clock.now()
    assert stored.revoked_at is None and stored.revocation_reason is None
    assert stored.der == cert.public_bytes(Encoding.DER)
    assert rows(platform.database, "SELECT state, fingerprint_sha256, issuer_ca_id FROM serials") == [
        ("issued", stored.fingerprint_sha256, issuer.id)
    ]
    assert sorted(r[0] for r in rows(platform.database, "SELECT name FROM certificate_names")) == [
        "192.0.2.5",
        "www.example.com",
    ]
    last = list(platform.audit.entries())[-1]
    assert (last.actor, last.action) == ("alice", "certificate.issued")
    assert last.subject == f"cert:{stored.serial}@{stored.issuer}"  # a serial is unique per issuer only
    assert last.details["fingerprint_sha256"] == stored.fingerprint_sha256
    assert last.details["team"] == "web"


def test_serial_is_committed_before_the_certificate_is_signed(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = platform.authorities.issuing_authority()
    seen: list[str | None] = []
    original = authority.sign

    def observing_sign(request: ValidatedRequest, serial_number: int) -> Any:
        # A separate transaction sees only committed rows.
        with platform.store.unit_of_work() as uow:
            seen.append(uow.serials.get_state(serial_hex(serial_number)))
        return original(request, serial_number)

    monkeypatch.setattr(authority, "sign", observing_sign)
    platform.issuance.issue(_request(), actor="test")
    assert seen == ["reserved"]


class _LedgerFailingAfterTheInserts:
    """The final write of issuance fails part-way, as a full disk or a lost connection would:
    after the certificate, names, serial state and audit rows are sent, before the event."""

    def __init__(self, inner: IssuanceLedger) -> None:
        self._inner = inner

    def claim_serials(self, claims: Sequence[SerialClaim]) -> Sequence[ClaimResult]:
        return self._inner.claim_serials(claims)

    def record_issued(self, entries: Sequence[IssuedEntry]) -> Sequence[CertificateRecord]:
        def disk_full(record: CertificateRecord) -> Event:
            raise OSError("disk full")

        return self._inner.record_issued([IssuedEntry(e.record, e.audit, disk_full) for e in entries])

    def caused_by_items(self, error: BaseException) -> bool:
        return self._inner.caused_by_items(error)


def test_serial_stays_on_record_when_the_write_after_signing_fails(
    platform: Platform, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = platform.authorities.issuing_authority()
    signed: list[int] = []
    original = authority.sign

    def recording_sign(request: ValidatedRequest, serial_number: int) -> Any:
        signed.append(serial_number)
        return original(request, serial_number)

    monkeypatch.setattr(authority, "sign", recording_sign)
    ledger = _LedgerFailingAfterTheInserts(platform.store.issuance_ledger())
    service = IssuanceService(platform.store.unit_of_work, lambda: authority, clock, ledger=ledger)
    audit_before = audit_actions(platform.database)

    with pytest.raises(OSError, match="disk full"):
        service.issue(_request(), actor="test")

    assert len(signed) == 1, "the certificate was signed before the failure"
    assert rows(platform.database, "SELECT serial, state, fingerprint_sha256 FROM serials") == [
        (serial_hex(signed[0]), "reserved", None)
    ]
    counts = table_counts(platform.database)
    assert (counts["certificates"], counts["certificate_names"]) == (0, 0)
    assert audit_actions(platform.database) == audit_before  # the issuance audit entry rolled back too
    assert platform.audit.verify().ok


def test_reserving_a_duplicate_serial_is_a_conflict(platform: Platform, clock: FakeClock) -> None:
    issuer_id = platform.authorities.issuing_authority().issuer.id
    with platform.store.unit_of_work() as uow:
        uow.serials.reserve("abc123", issuer_id, clock.now())
    with (
        pytest.raises(Conflict, match="serial abc123 is already taken"),
        platform.store.unit_of_work() as uow,
    ):
        uow.serials.reserve("abc123", issuer_id, clock.now())
    # The conflict is scoped: the same transaction can go on and reserve another serial.
    with platform.store.unit_of_work() as uow:
        with pytest.raises(Conflict):
            uow.serials.reserve("abc123", issuer_id, clock.now())
        uow.serials.reserve("abc124", issuer_id, clock.now())
    assert sorted(r[0] for r in rows(platform.database, "SELECT serial FROM serials")) == ["abc123", "abc124"]


def test_a_colliding_serial_is_never_reused(
    platform: Platform, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer_id = platform.authorities.issuing_authority().issuer.id
    taken = 0x0123_4567_89AB_CDEF_0123_4567_89AB_CDEF
    fresh = 0x7EDC_BA98_7654_3210_7EDC_BA98_7654_3210
    with platform.store.unit_of_work() as uow:
        uow.serials.reserve(serial_hex(taken), issuer_id, clock.now())
    draws = iter([taken, fresh])
    monkeypatch.setattr("certfleet.services.issuance.new_serial_number", lambda: next(draws))
    result = platform.issuance.issue(_request(), actor="test")
    assert result.issued.certificate.serial_number == fresh


def test_issuance_gives_up_after_repeated_collisions(
    platform: Platform, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer_id = platform.authorities.issuing_authority().issuer.id
    taken = 0x0123_4567_89AB_CDEF_0123_4567_89AB_CDEF
    with platform.store.unit_of_work() as uow:
        uow.serials.reserve(serial_hex(taken), issuer_id, clock.now())
    monkeypatch.setattr("certfleet.services.issuance.new_serial_number", lambda: taken)
    with pytest.raises(Conflict, match="could not reserve a unique serial"):
        platform.issuance.issue(_request(), actor="test")
    assert table_counts(platform.database)["certificates"] == 0


def test_refusal_records_only_its_audit_entry(platform: Platform) -> None:
    before = table_counts(platform.database)
    with pytest.raises(BadName, match="empty label"):
        platform.issuance.issue(_request("ok.example.com", "bad..example.com"), actor="bob")
    assert table_counts(platform.database) == before
    last = list(platform.audit.entries())[-1]
    assert (last.actor, last.action) == ("bob", "certificate.refused")
    assert last.subject == "bob"  # on the requester, never on a certificate
    assert last.details["names"] == ["ok.example.com", "bad..example.com"]
    assert "empty label" in last.details["reason"]
    assert platform.audit.verify().ok


def test_names_outside_a_tokens_patterns_are_refused_and_audited(platform: Platform) -> None:
    principal = Principal("token:abc", "web", Scope.ISSUE, (NamePattern.parse("*.web.example.com"),))
    before = table_counts(platform.database)
    with pytest.raises(Forbidden, match=r"may not issue for 'db\.example\.com'"):
        platform.issuance.issue(
            _request("api.web.example.com", "db.example.com"), actor="token:abc", principal=principal
        )
    assert table_counts(platform.database) == before
    assert audit_actions(platform.database)[-1] == "certificate.refused"
    ok = platform.issuance.issue(_request("api.web.example.com"), actor="token:abc", principal=principal)
    assert ok.record.sans == ("api.web.example.com",)


def test_generated_private_key_is_returned_only_when_generated(platform: Platform) -> None:
    key = generate_private_key(KeyType.EC_P256)
    request = IssuanceRequest("tls-server", key.public_key(), ("www.example.com",))
    with_key = platform.issuance.issue(request, actor="t", private_key=key)
    pem = with_key.private_key_pem()
    assert pem is not None and pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    without = platform.issuance.issue(_request(), actor="t")
    assert without.private_key_pem() is None
    # No private key reaches the audit log.
    for entry in platform.audit.entries():
        assert "PRIVATE KEY" not in json.dumps(dict(entry.details))


def test_revocation_urls_follow_the_configured_public_base_url(
    data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    platform = make_platform(data_dir, db_url, clock, base_url="http://pki.example.com:8080/")
    try:
        platform.authorities.initialize("Example", KeyType.EC_P256, actor="test")
        issuer_id = platform.authorities.issuing_authority().issuer.id
        cert = platform.issuance.issue(_request(), actor="test").issued.certificate
    finally:
        platform.close()
    crl = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = [n.value for dp in crl for n in dp.full_name or []] + [d.access_location.value for d in aia]
    assert sorted(urls) == sorted(
        [
            f"http://pki.example.com:8080/crl/{issuer_id}.crl",
            "http://pki.example.com:8080/ocsp",
            f"http://pki.example.com:8080/ca/{issuer_id}.cer",
        ]
    )


def test_an_intermediate_retired_by_another_process_never_signs_again(
    platform: Platform, data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    # Given a server process that has issued (and so cached its issuing CA)
    before = platform.issuance.issue(_request("www.example.com"), actor="alice")
    old_ca = platform.authorities.issuing_authority().issuer.id
    assert before.issued.issuer_id == old_ca
    # When another process (the CLI's `ca compromise`) switches issuance to a new intermediate
    other = make_platform(data_dir, db_url, clock)
    try:
        new_ca, retired = other.authorities.add_intermediate(None, actor="incident")
    finally:
        other.close()
    assert retired == [old_ca]
    # Then the server's very next certificate comes from the new CA, without a restart
    after = platform.issuance.issue(_request("www.example.com"), actor="alice")
    assert after.issued.issuer_id == new_ca.id
    after.issued.certificate.verify_directly_issued_by(new_ca.certificate)
    # and no serial was reserved under the retired CA for it
    reserved = rows(platform.database, "SELECT issuer_ca_id FROM serials")
    assert sorted(r[0] for r in reserved) == sorted([old_ca, new_ca.id])

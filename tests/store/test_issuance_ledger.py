"""The issuance ledger runs its statements on the driver's cursor (compiled once per
dialect), not through SQLAlchemy's execution: what it writes must read back exactly as the
ORM and the inventory expect it (aware UTC timestamps, bytes, JSON text), and a constraint
the driver raises must still be a ``Conflict`` that keeps nothing of its batch."""

from __future__ import annotations

import dataclasses
import secrets

import pytest

from certfleet.app import Platform
from certfleet.audit import AuditDraft
from certfleet.ca import IssuanceRequest
from certfleet.errors import Conflict
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.issuance import ClaimOutcome, IssuedEntry, SerialClaim
from certfleet.lifecycle.notifications.events import Event, EventKind
from certfleet.x509 import KeyType, generate_private_key
from tests.services.snapshot import rows


def _issue(platform: Platform, name: str) -> CertificateRecord:
    request = IssuanceRequest("tls-server", generate_private_key(KeyType.EC_P256).public_key(), (name,))
    return platform.issuance.issue(request, actor="t", team="ops", tags=("a", "b")).record


def _entry(record: CertificateRecord) -> IssuedEntry:
    def event(stored: CertificateRecord) -> Event:
        return Event(
            EventKind.ISSUED, stored.serial, stored.first_seen, stored.team, stored.to_dict(stored.first_seen)
        )

    audit = AuditDraft(record.first_seen, "t", "certificate.issued", f"certificate:{record.serial}", {})
    return IssuedEntry(record, audit, event)


def test_a_record_reads_back_as_it_was_written(platform: Platform) -> None:
    issued = _issue(platform, "readback.example.com")

    with platform.store.unit_of_work(read_only=True) as uow:
        (stored,) = uow.certificates.get_by_serial(issued.serial)

    assert stored == issued
    assert stored.not_after.tzinfo is not None and stored.first_seen == issued.first_seen
    (([state, fingerprint, reserved_at]),) = rows(
        platform.database,
        "SELECT state, fingerprint_sha256, reserved_at FROM serials WHERE serial = :s",
        s=issued.serial,
    )
    assert (state, fingerprint) == ("issued", issued.fingerprint_sha256)
    assert reserved_at is not None
    assert rows(
        platform.database, "SELECT name FROM certificate_names WHERE certificate_id = :i", i=issued.id
    ) == [("readback.example.com",)]
    assert platform.audit.verify().ok


def test_a_certificate_recorded_twice_is_a_conflict_and_its_batch_keeps_nothing(platform: Platform) -> None:
    # Given a recorded certificate, and a batch holding a new record and that one again
    issued = _issue(platform, "twice.example.com")
    fresh = dataclasses.replace(
        issued, serial=secrets.token_hex(16), fingerprint_sha256=secrets.token_hex(32)
    )
    before = (
        rows(platform.database, "SELECT count(*) FROM certificates"),
        rows(platform.database, "SELECT count(*) FROM audit_log"),
    )

    # When the ledger records the batch
    with pytest.raises(Conflict):
        platform.store.issuance_ledger().record_issued([_entry(fresh), _entry(issued)])

    # Then the driver's unique violation rolled the whole batch back
    assert (
        rows(platform.database, "SELECT count(*) FROM certificates"),
        rows(platform.database, "SELECT count(*) FROM audit_log"),
    ) == before
    assert rows(platform.database, "SELECT count(*) FROM certificates WHERE serial = :s", s=fresh.serial) == [
        (0,)
    ]
    assert platform.audit.verify().ok


def test_a_serial_on_record_is_taken_and_a_retired_issuer_is_noticed(platform: Platform) -> None:
    issued = _issue(platform, "taken.example.com")
    issuer = platform.authorities.issuing_authority().issuer.id
    now = platform.clock.now()

    def claim(serial: str, issuer_ca_id: str, active: bool) -> SerialClaim:
        return SerialClaim(serial, issuer_ca_id, active, secrets.token_hex(32), now)

    results = platform.store.issuance_ledger().claim_serials(
        [
            claim(issued.serial, issuer, False),
            claim(secrets.token_hex(16), "no-such-ca", True),
            claim(secrets.token_hex(16), issuer, True),
        ]
    )

    assert [r.outcome for r in results] == [
        ClaimOutcome.TAKEN,
        ClaimOutcome.ISSUER_RETIRED,
        ClaimOutcome.RESERVED,
    ]

"""The revocation service on SQLite and PostgreSQL: one transaction per revocation, and CRLs
and OCSP responses that agree with the inventory at once, across restarts too."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certfleet.access import NamePattern, Principal, Scope
from certfleet.app import Platform
from certfleet.ca import CaCertificate, IssuanceRequest
from certfleet.errors import ConfigurationError, Conflict, Forbidden, InvalidInput, NotFound, PolicyViolation
from certfleet.inventory import Status
from certfleet.revocation import (
    AlreadyRevoked,
    CachedResponse,
    CertStatus,
    CrlKind,
    KeyBlocked,
    RevocationReason,
)
from certfleet.services.issuance import IssuanceResult
from certfleet.x509 import KeyType, generate_private_key, serial_hex
from tests.conftest import FakeClock, make_platform
from tests.services.snapshot import audit_actions, rows, table_counts

TABLES = ("certificates", "serials", "revocations", "blocked_keys", "audit_log", "crls")


def _issue(
    platform: Platform,
    name: str = "www.example.test",
    *,
    team: str | None = "web",
    days: int | None = None,
    key: CertificateIssuerPrivateKeyTypes | None = None,
) -> IssuanceResult:
    key = key or generate_private_key(KeyType.EC_P256)
    request = IssuanceRequest("tls-server", key.public_key(), (name,), validity_days=days)
    return platform.issuance.issue(request, actor="test", team=team, private_key=key)


def _cas(platform: Platform) -> tuple[CaCertificate, CaCertificate]:
    cas = platform.authorities.hierarchy()
    root = next(ca for ca in cas if ca.role == "root")
    issuing = next(ca for ca in cas if ca.role == "intermediate")
    return root, issuing


def _crl(platform: Platform, ca_id: str, kind: CrlKind = CrlKind.FULL) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(platform.revocation.crl(ca_id, kind).der)


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _ocsp(
    platform: Platform, cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None
) -> ocsp.OCSPResponse:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return ocsp.load_der_ocsp_response(
        platform.revocation.ocsp(builder.build().public_bytes(Encoding.DER)).der
    )


def _listed(crl: x509.CertificateRevocationList, cert: x509.Certificate) -> bool:
    return crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_revoke_records_everything_and_publishes_it_at_once(platform: Platform, clock: FakeClock) -> None:
    issued = _issue(platform)
    cert, issuer = issued.issued.certificate, issued.issued.chain[0]
    before = _crl(platform, issued.record.issuer_ca_id or "")
    assert _ocsp(platform, cert, issuer).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert rows(
        platform.database, "SELECT count(*) FROM ocsp_responses WHERE serial = :s", s=issued.record.serial
    ) == [(1,)]
    clock.advance(dt.timedelta(minutes=5))
    compromised = clock.now() - dt.timedelta(days=1)

    record = platform.revocation.revoke(
        issued.record.serial, "keyCompromise", actor="alice", invalidity_date=compromised
    )

    now = clock.now().replace(microsecond=0)
    assert (record.status, record.revoked_at, record.revocation_reason) == (
        Status.REVOKED,
        now,
        "keyCompromise",
    )
    assert platform.inventory.find(issued.record.serial) == record
    assert rows(
        platform.database,
        "SELECT issuer_ca_id, reason FROM revocations WHERE serial = :s",
        s=issued.record.serial,
    ) == [(issued.record.issuer_ca_id, "keyCompromise")]
    # The cached "good" response went in the same transaction.
    assert rows(
        platform.database, "SELECT count(*) FROM ocsp_responses WHERE serial = :s", s=issued.record.serial
    ) == [(0,)]
    entry = list(platform.audit.entries())[-1]
    assert (entry.actor, entry.action, entry.subject) == (
        "alice",
        "certificate.revoked",
        f"cert:{issued.record.serial}@{issued.record.issuer}",
    )
    assert entry.details["reason"] == "keyCompromise"
    assert entry.details["ocsp_responses_dropped"] == 1
    assert entry.details["blocked_key_spki_sha256"] is not None
    # The very next OCSP answer and CRL already show it.
    response = _ocsp(platform, cert, issuer)
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == now
    assert response.revocation_reason is x509.ReasonFlags.key_compromise
    after = _crl(platform, issued.record.issuer_ca_id or "")
    assert _number(after) > _number(before)
    revoked = after.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert revoked is not None and revoked.revocation_date_utc == now
    assert revoked.extensions.get_extension_for_class(x509.InvalidityDate).value.invalidity_date_utc == (
        compromised.replace(microsecond=0)
    )


def test_revoking_twice_says_so_and_changes_nothing(platform: Platform) -> None:
    issued = _issue(platform)
    ca_id = issued.record.issuer_ca_id or ""
    first = platform.revocation.revoke(issued.record.serial, RevocationReason.SUPERSEDED, actor="alice")
    number = _number(_crl(platform, ca_id))
    counts = table_counts(platform.database, TABLES)
    with pytest.raises(AlreadyRevoked, match="already revoked") as caught:
        platform.revocation.revoke(issued.record.serial, "keyCompromise", actor="mallory")
    assert isinstance(caught.value, Conflict) and caught.value.http_status == 409
    assert table_counts(platform.database, TABLES) == counts
    assert platform.inventory.find(issued.record.serial) == first
    assert _number(_crl(platform, ca_id)) == number  # nothing made the CRL stale
    assert "mallory" not in [e.actor for e in platform.audit.entries()]


def test_key_compromise_blocks_the_key_from_issuance(platform: Platform) -> None:
    key = generate_private_key(KeyType.EC_P256)
    issued = _issue(platform, key=key)
    other = _issue(platform, "other.example.test")
    platform.revocation.revoke(other.record.serial, "superseded", actor="alice")
    _issue(platform, "again.example.test", key=other.private_key)  # superseded: the key may be reused
    platform.revocation.revoke(issued.record.serial, "keyCompromise", actor="alice")
    with pytest.raises(KeyBlocked, match="keyCompromise") as caught:
        _issue(platform, "new.example.test", key=key)
    assert isinstance(caught.value, PolicyViolation) and caught.value.rule == "blocked-key"
    assert audit_actions(platform.database)[-1] == "certificate.refused"
    _issue(platform, "new.example.test")  # a fresh key is fine


def test_team_scoping_and_scope_for_principals(platform: Platform) -> None:
    web = _issue(platform, team="web")
    db = _issue(platform, "db.example.test", team="db")
    reader = Principal("token:r", "web", Scope.READ)
    with pytest.raises(Forbidden, match="scope read; revoke is required"):
        platform.revocation.revoke(web.record.serial, "superseded", actor="token:r", principal=reader)
    # Issue 12: the issue scope alone no longer revokes (this test used to revoke with it).
    patterns = (NamePattern.parse("**.example.test"),)
    web_issuer = Principal("token:i", "web", Scope.ISSUE, patterns)
    with pytest.raises(Forbidden, match="scope issue; revoke is required"):
        platform.revocation.revoke(web.record.serial, "superseded", actor="token:i", principal=web_issuer)
    web_revoker = Principal("token:w", "web", Scope.REVOKE, patterns)
    with pytest.raises(NotFound):  # another team's certificate does not exist for this token
        platform.revocation.revoke(db.record.serial, "superseded", actor="token:w", principal=web_revoker)
    assert platform.revocation.revoke(
        web.record.serial, "superseded", actor="w", principal=web_revoker
    ).status is (Status.REVOKED)
    admin = Principal("token:a", "ops", Scope.ADMIN)
    assert platform.revocation.revoke(db.record.serial, "superseded", actor="a", principal=admin).team == "db"


def _signed_but_unrecorded(
    platform: Platform, clock: FakeClock, serial_number: int, key: CertificateIssuerPrivateKeyTypes
) -> x509.Certificate:
    """A crash between signing and recording: the serial reserved, the certificate signed,
    the inventory never told."""
    authority = platform.authorities.issuing_authority()
    with platform.store.unit_of_work() as uow:
        uow.serials.reserve(serial_hex(serial_number), authority.issuer.id, clock.now())
    validated = authority.validate(IssuanceRequest("tls-server", key.public_key(), ("lost.example.test",)))
    return authority.sign(validated, serial_number).certificate


def test_a_serial_reserved_but_never_recorded_can_be_revoked(platform: Platform, clock: FakeClock) -> None:
    authority = platform.authorities.issuing_authority()
    serial_number = 0x5EC2E7
    lost = _signed_but_unrecorded(platform, clock, serial_number, generate_private_key(KeyType.EC_P256))
    assert (
        _ocsp(platform, lost, authority.issuer.certificate).certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    )
    with pytest.raises(NotFound):
        platform.revocation.revoke(serial_hex(serial_number), "keyCompromise", actor="alice")
    outcome = platform.revocation.revoke_serial(serial_hex(serial_number), "keyCompromise", actor="alice")
    assert outcome.record is None and not outcome.key_blocked  # no certificate known: no key to block
    assert _listed(_crl(platform, authority.issuer.id), lost)
    assert (
        _ocsp(platform, lost, authority.issuer.certificate).certificate_status is ocsp.OCSPCertStatus.REVOKED
    )


def test_revoking_with_the_certificate_records_it_and_blocks_its_key(
    platform: Platform, clock: FakeClock
) -> None:
    key = generate_private_key(KeyType.EC_P256)
    lost = _signed_but_unrecorded(platform, clock, 0xC0FFEE, key)
    outcome = platform.revocation.revoke_serial("00:c0:ff:ee", "keyCompromise", actor="cli", certificate=lost)
    assert outcome.record is not None and outcome.key_blocked
    assert platform.inventory.find("c0ffee").status is Status.REVOKED
    with pytest.raises(KeyBlocked):
        platform.issuance.issue(
            IssuanceRequest("tls-server", key.public_key(), ("x.example.test",)), actor="t"
        )


def test_a_certificate_of_another_ca_is_refused(platform: Platform, clock: FakeClock) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Test Issuing CA 1")])
    foreign = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(_cas(platform)[1].certificate.subject)
        .public_key(key.public_key())
        .serial_number(0xBAD)
        .not_valid_before(clock.now())
        .not_valid_after(clock.now() + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    counts = table_counts(platform.database, TABLES)
    with pytest.raises(InvalidInput, match="not signed by any CA"):
        platform.revocation.revoke_serial("bad", "keyCompromise", actor="cli", certificate=foreign)
    with pytest.raises(InvalidInput, match="serial is bad, not abc"):
        platform.revocation.revoke_serial("abc", "keyCompromise", actor="cli", certificate=foreign)
    platform.inventory.import_bytes(foreign.public_bytes(Encoding.PEM), "foreign.pem", actor="t")
    with pytest.raises(NotFound):  # imported, not issued by us: not ours to revoke
        platform.revocation.revoke("bad", "keyCompromise", actor="cli")
    assert table_counts(platform.database, ("revocations", "blocked_keys")) == {
        "revocations": counts["revocations"],
        "blocked_keys": counts["blocked_keys"],
    }


@pytest.mark.parametrize(
    ("serial", "reason", "invalidity", "error", "message"),
    [
        ("xyz", "superseded", None, InvalidInput, "bad serial"),
        ("1" * 41, "superseded", None, InvalidInput, "bad serial"),
        ("abcdef", "certificateHold", None, InvalidInput, "unknown revocation reason"),
        ("abcdef", "keyCompromise", dt.timedelta(days=1), InvalidInput, "in the future"),
        ("abcdef", "superseded", None, NotFound, "no certificate"),
    ],
)
def test_bad_revocations_are_refused_precisely(
    platform: Platform,
    clock: FakeClock,
    serial: str,
    reason: str,
    invalidity: dt.timedelta | None,
    error: type[Exception],
    message: str,
) -> None:
    when = clock.now() + invalidity if invalidity is not None else None
    with pytest.raises(error, match=message):
        platform.revocation.revoke(serial, reason, actor="alice", invalidity_date=when)
    assert rows(platform.database, "SELECT count(*) FROM revocations") == [(0,)]


def _write(tmp_path: Path, name: str, certs: list[x509.Certificate | x509.CertificateRevocationList]) -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certs))
    return path


def _openssl_verify(
    tmp_path: Path,
    root: CaCertificate,
    issuing: CaCertificate,
    leaf: x509.Certificate,
    *crls: x509.CertificateRevocationList,
) -> subprocess.CompletedProcess[str]:
    argv = [
        "openssl",
        "verify",
        "-crl_check_all",
        "-CAfile",
        str(_write(tmp_path, "root.pem", [root.certificate])),
    ]
    argv += ["-untrusted", str(_write(tmp_path, "chain.pem", [issuing.certificate]))]
    for index, crl in enumerate(crls):
        argv += ["-CRLfile", str(_write(tmp_path, f"crl{index}.pem", [crl]))]
    argv.append(str(_write(tmp_path, "leaf.pem", [leaf])))
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_a_revoked_intermediate_is_on_the_root_crl(platform: Platform, tmp_path: Path) -> None:
    root, issuing = _cas(platform)
    leaf = _issue(platform).issued.certificate
    assert (
        _openssl_verify(
            tmp_path, root, issuing, leaf, _crl(platform, root.id), _crl(platform, issuing.id)
        ).returncode
        == 0
    )
    with pytest.raises(InvalidInput, match="root cannot be revoked"):
        platform.revocation.revoke_serial(
            serial_hex(root.certificate.serial_number), "caCompromise", actor="cli"
        )

    outcome = platform.revocation.revoke_serial(
        serial_hex(issuing.certificate.serial_number), "caCompromise", actor="cli"
    )

    assert outcome.issuer_ca_id == root.id and outcome.record is None
    root_crl = _crl(platform, root.id)
    assert root_crl.is_signature_valid(root.certificate.public_key())  # type: ignore[arg-type]
    entry = root_crl.get_revoked_certificate_by_serial_number(issuing.certificate.serial_number)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.ca_compromise
    )
    assert (
        _ocsp(platform, issuing.certificate, root.certificate).certificate_status
        is ocsp.OCSPCertStatus.REVOKED
    )
    result = _openssl_verify(tmp_path, root, issuing, leaf, root_crl, _crl(platform, issuing.id))
    assert result.returncode == 2 and "certificate revoked" in result.stdout + result.stderr


def test_crl_entries_stay_until_one_crl_period_after_expiry(platform: Platform, clock: FakeClock) -> None:
    short = _issue(platform, days=1)
    ca_id = short.record.issuer_ca_id or ""
    cert = short.issued.certificate
    platform.revocation.revoke(short.record.serial, "superseded", actor="alice")
    assert _listed(_crl(platform, ca_id), cert)
    clock.set(cert.not_valid_after_utc + dt.timedelta(days=3))  # expired; the CRL is due again
    assert _listed(_crl(platform, ca_id), cert)
    clock.set(cert.not_valid_after_utc + platform.revocation.settings.crl_validity + dt.timedelta(days=1))
    crl = _crl(platform, ca_id)
    assert crl.last_update_utc == clock.now().replace(microsecond=0)
    assert not _listed(crl, cert)


def test_delta_crls_list_what_changed_since_their_base(platform: Platform, clock: FakeClock) -> None:
    first, second, third = (_issue(platform, f"d{i}.example.test") for i in range(3))
    ca_id = first.record.issuer_ca_id or ""
    platform.revocation.revoke(first.record.serial, "superseded", actor="alice")
    base = _crl(platform, ca_id)
    base_number = _number(base)
    assert base.extensions.get_extension_for_class(x509.FreshestCRL).value[0].full_name == [
        x509.UniformResourceIdentifier(f"{platform.settings.public_base_url}/crl/{ca_id}-delta.crl")
    ]
    empty = _crl(platform, ca_id, CrlKind.DELTA)
    assert empty.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == base_number
    assert len(empty) == 0  # the first revocation is in the base already
    clock.advance(dt.timedelta(hours=1))
    platform.revocation.revoke(second.record.serial, "keyCompromise", actor="alice")
    platform.revocation.revoke(third.record.serial, "affiliationChanged", actor="alice")
    delta = _crl(platform, ca_id, CrlKind.DELTA)
    assert {r.serial_number for r in delta} == {
        second.issued.certificate.serial_number,
        third.issued.certificate.serial_number,
    }
    assert delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == base_number
    full = _crl(platform, ca_id)
    assert len(full) == 3
    numbers = [_number(base), _number(empty), _number(delta), _number(full)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4  # one shared sequence
    # Half a CRL period later the next complete CRL becomes the new base.
    clock.advance(platform.revocation.settings.crl_validity / 2)
    new_base = _crl(platform, ca_id)
    rebased = _crl(platform, ca_id, CrlKind.DELTA)
    assert rebased.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == _number(
        new_base
    )
    assert len(rebased) == 0 and len(new_base) == 3


def test_crl_numbers_keep_growing_across_restarts(
    platform: Platform, data_dir: Path, db_url: str, clock: FakeClock
) -> None:
    issued = _issue(platform)
    ca_id = issued.record.issuer_ca_id or ""
    before = _number(_crl(platform, ca_id))
    platform.close()
    reopened = make_platform(data_dir, db_url, clock)
    try:
        assert _number(_crl(reopened, ca_id)) == before  # nothing changed: the same CRL is served
        reopened.revocation.revoke(issued.record.serial, "superseded", actor="alice")
        after = _crl(reopened, ca_id)
        assert _number(after) > before and _listed(after, issued.issued.certificate)
        assert _ocsp(reopened, issued.issued.certificate, issued.issued.chain[0]).certificate_status is (
            ocsp.OCSPCertStatus.REVOKED
        )
    finally:
        reopened.close()


def test_a_good_response_cached_after_the_revocation_is_never_served(
    platform: Platform, clock: FakeClock
) -> None:
    """The race the store guards against: a request read 'good' just before the revocation
    committed and wrote its response to the cache just after."""
    issued = _issue(platform)
    cert, issuer = issued.issued.certificate, issued.issued.chain[0]
    stale_good = platform.revocation.ocsp(
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
    )
    platform.revocation.revoke(issued.record.serial, "keyCompromise", actor="alice")
    now = clock.now().replace(microsecond=0)
    platform.store.revocation_store().save_responses(
        [
            CachedResponse(
                issued.record.issuer_ca_id or "",
                issued.record.serial,
                "sha1",
                CertStatus.GOOD,
                now,
                now + dt.timedelta(days=4),
                stale_good.der,
            )
        ]
    )
    assert _ocsp(platform, cert, issuer).certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_ocsp_answers_unknown_for_serials_never_issued_and_echoes_nonces(platform: Platform) -> None:
    issued = _issue(platform)
    issuer = issued.issued.chain[0]
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            *_id_hashes(issued.issued.certificate, issuer), 0x123456789ABCDEF, hashes.SHA1()
        )
        .build()
        .public_bytes(Encoding.DER)
    )
    unknown = ocsp.load_der_ocsp_response(platform.revocation.ocsp(request).der)
    assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    good = _ocsp(platform, issued.issued.certificate, issuer, nonce=b"\x09" * 16)
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert good.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"\x09" * 16


def _id_hashes(cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes, bytes]:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return request.issuer_name_hash, request.issuer_key_hash


def test_the_delegated_responder_is_made_once_kept_encrypted_and_rotated(
    platform: Platform, clock: FakeClock, data_dir: Path
) -> None:
    issued = _issue(platform)
    cert, issuer = issued.issued.certificate, issued.issued.chain[0]
    first = _ocsp(platform, cert, issuer)
    (responder,) = first.certificates
    assert responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [x509.ExtendedKeyUsageOID.OCSP_SIGNING]
    )
    assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    responder.verify_directly_issued_by(issuer)
    key_files = sorted((data_dir / "keys").glob("ocsp-*"))
    assert len(key_files) == 1
    assert key_files[0].read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert key_files[0].stat().st_mode & 0o777 == 0o600
    assert rows(
        platform.database,
        "SELECT state FROM serials WHERE serial = :s",
        s=serial_hex(responder.serial_number),
    ) == [("issued",)]
    assert "ocsp.responder_created" in audit_actions(platform.database)
    # Within its first half-life the same responder signs; after it, a new one does.
    clock.advance(platform.revocation.settings.ocsp_validity / 3 + dt.timedelta(seconds=1))
    assert _ocsp(platform, cert, issuer).certificates == [responder]
    clock.set(responder.not_valid_before_utc + platform.revocation.settings.responder_lifetime / 2)
    platform.revocation.maintain()
    rotated = _ocsp(platform, cert, issuer).certificates
    assert rotated != [responder] and rotated[0].not_valid_before_utc > responder.not_valid_before_utc
    # Once the old one has expired, maintenance removes it and deletes its key.
    clock.set(responder.not_valid_after_utc + dt.timedelta(seconds=1))
    platform.revocation.maintain()
    assert key_files[0] not in set((data_dir / "keys").glob("ocsp-*"))


def test_revoking_the_responder_certificate_replaces_it(platform: Platform) -> None:
    issued = _issue(platform)
    cert, issuer = issued.issued.certificate, issued.issued.chain[0]
    (responder,) = _ocsp(platform, cert, issuer).certificates
    platform.revocation.revoke_serial(serial_hex(responder.serial_number), "keyCompromise", actor="cli")
    platform.revocation.revoke(issued.record.serial, "superseded", actor="alice")  # a fresh response is due
    (replacement,) = _ocsp(platform, cert, issuer).certificates
    assert replacement.serial_number != responder.serial_number


def _platform_with(data_dir: Path, db_url: str, clock: FakeClock, revocation: str) -> Platform:
    (data_dir / "config.toml").write_text(f"[revocation]\n{revocation}\n")
    return make_platform(data_dir, db_url, clock)


def test_crl_validity_and_ca_signing_come_from_config(data_dir: Path, db_url: str, clock: FakeClock) -> None:
    platform = _platform_with(data_dir, db_url, clock, 'crl_validity_days = 3\nocsp_signing = "ca"')
    try:
        platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
        issued = _issue(platform)
        crl = _crl(platform, issued.record.issuer_ca_id or "")
        assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=3)  # type: ignore[operator]
        response = _ocsp(platform, issued.issued.certificate, issued.issued.chain[0])
        assert response.certificates == []  # the CA signs: nothing to include
        assert response.responder_key_hash == response.issuer_key_hash
    finally:
        platform.close()


def test_a_crl_validity_over_ten_days_is_refused(data_dir: Path, db_url: str, clock: FakeClock) -> None:
    (data_dir / "config.toml").write_text("[revocation]\ncrl_validity_days = 11\n")
    with pytest.raises(ConfigurationError, match="at most 10"):
        make_platform(data_dir, db_url, clock)


def test_maintenance_rebuilds_stale_crls_and_leaves_new_certificates_to_their_first_request(
    platform: Platform,
) -> None:
    issued = [_issue(platform, f"m{i}.example.test") for i in range(3)]
    report = platform.revocation.maintain()
    assert report.errors == []
    assert report.crls_built == 4  # complete and delta, for the root and the issuing CA
    # Nothing is signed for certificates nobody has asked about (issuance pays no OCSP cost)
    assert report.responses_signed == 0
    assert rows(platform.database, "SELECT count(*) FROM ocsp_responses") == [(0,)]
    # The first request signs and stores the answer; the next maintenance has nothing to do
    cert, issuer = issued[0].issued.certificate, issued[0].issued.chain[0]
    assert _ocsp(platform, cert, issuer).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert rows(platform.database, "SELECT count(*) FROM ocsp_responses WHERE hash_algorithm = 'sha1'") == [
        (1,)
    ]
    again = platform.revocation.maintain()
    assert (again.crls_built, again.responses_signed) == (0, 0)
    # A revocation is answered at once, never from the good answer signed before it
    platform.revocation.revoke(issued[0].record.serial, "superseded", actor="alice")
    assert _ocsp(platform, cert, issuer).certificate_status is ocsp.OCSPCertStatus.REVOKED
    after = platform.revocation.maintain()
    assert (after.crls_built, after.responses_signed) == (2, 0)  # the CA's two CRLs

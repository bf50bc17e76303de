"""Rotation campaigns and CA rotation, on SQLite and PostgreSQL: what is done server-side and
what waits for key holders, resuming after a crash without duplicates, milestones seen by
scans, and the CA compromise playbook."""

from __future__ import annotations

import datetime as dt
import secrets
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certfleet.app import Platform
from certfleet.discovery.records import LocationKind, Sighting
from certfleet.errors import Conflict, InvalidInput, NotFound
from certfleet.inventory import CertificateRecord, Status
from certfleet.lifecycle.campaigns import CampaignRequest, CampaignStatus, ItemAction, ItemState
from certfleet.lifecycle.jobs import Lease
from certfleet.lifecycle.selection import Selection
from certfleet.services.rotation import RotationService
from certfleet.x509 import KeyType, generate_private_key
from tests.conftest import FakeClock
from tests.lifecycle.fleet import certificates_named, issue, successors
from tests.services.snapshot import rows

DAY = dt.timedelta(days=1)


def _mixed_fleet(platform: Platform) -> tuple[list[CertificateRecord], list[CertificateRecord]]:
    rsa_key = generate_private_key(KeyType.RSA_2048)  # one key keeps the test fast
    rsa = [issue(platform, f"rsa{i}.example.test", key=rsa_key, team="web").record for i in range(4)]
    others = [
        issue(platform, "ec.example.test").record,
        issue(platform, "big.example.test", key_type=KeyType.RSA_3072).record,
    ]
    return rsa, others


def _fresh(platform: Platform, record: CertificateRecord) -> CertificateRecord:
    with platform.store.unit_of_work(read_only=True) as uow:
        found = uow.lifecycle.lineage.certificate(record.id or 0)
    assert found is not None
    return found


def _to_p256(generate: Path | None, revoke: dt.timedelta | None = DAY * 0) -> CampaignRequest:
    return CampaignRequest(
        Selection.parse("key=rsa-2048"),
        to_key_type=KeyType.EC_P256,
        generate_dir=generate,
        revoke_old_after=revoke,
    )


def test_a_dry_run_lists_the_plan_and_changes_nothing(platform: Platform) -> None:
    rsa, _ = _mixed_fleet(platform)
    issue(platform, "agent.example.test", key_type=KeyType.RSA_2048, tags=("agent:web-1",))
    before = rows(platform.database, "SELECT count(*) FROM certificates")
    plan = platform.rotation.preview(_to_p256(None))
    assert [p.record.serial for p in plan[:4]] == [r.serial for r in rsa]
    assert [p.action for p in plan] == [ItemAction.REKEY] * 4 + [ItemAction.ARI]
    assert rows(platform.database, "SELECT count(*) FROM rotation_campaigns") == [(0,)]
    assert rows(platform.database, "SELECT count(*) FROM certificates") == before


def test_rsa_2048_to_p256_with_generated_keys(platform: Platform, tmp_path: Path) -> None:
    # Given RSA-2048 certificates among others
    rsa, others = _mixed_fleet(platform)
    out = tmp_path / "keys"
    # When a campaign replaces every RSA-2048 certificate with a P-256 one
    campaign = platform.rotation.create(_to_p256(out), actor="test")
    report = platform.rotation.run(campaign.id)
    # Then it completed: every one replaced by a P-256 certificate for a key written 0600
    assert report.campaign.status is CampaignStatus.COMPLETED
    assert report.counts.of(ItemState.REISSUED) == report.counts.old_revoked == 4
    for old in rsa:
        [new_id] = successors(platform, old)
        with platform.store.unit_of_work(read_only=True) as uow:
            new = uow.lifecycle.lineage.certificate(new_id)
        assert new is not None
        assert (new.key_algorithm, new.key_size, new.sans, new.team) == ("ec", 256, old.sans, "web")
        key_file = out / old.serial / "key.pem"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        cert = x509.load_pem_x509_certificate((out / old.serial / "cert.pem").read_bytes())
        assert cert.public_key() == key.public_key()
        assert cert.serial_number == int(new.serial, 16)
        gone = _fresh(platform, old)
        assert (gone.status, gone.revocation_reason) == (Status.REVOKED, "superseded")
    for record in others:
        assert successors(platform, record) == [] and _fresh(platform, record).status is Status.ACTIVE
    steps = [
        r[0]
        for r in rows(
            platform.database, "SELECT dedup_key FROM notification_events WHERE kind = 'rotation-progress'"
        )
    ]
    assert f"campaign:{campaign.id}:created" in steps and f"campaign:{campaign.id}:completed" in steps


def test_without_generated_keys_the_campaign_waits_for_key_holders(platform: Platform) -> None:
    rsa, _ = _mixed_fleet(platform)
    campaign = platform.rotation.create(_to_p256(None, revoke=None), actor="test")
    report = platform.rotation.run(campaign.id)
    assert report.campaign.status is CampaignStatus.WAITING
    assert report.counts.of(ItemState.AWAITING_KEY) == 4
    assert successors(platform, rsa[0]) == []  # nothing was issued server-side
    # The key holder sends a CSR for a new key of the asked type
    wrong = _csr(generate_private_key(KeyType.EC_P384), "rsa0.example.test")
    with pytest.raises(InvalidInput, match="asks for a ec-p256 key"):
        platform.rotation.submit_csr(campaign.id, rsa[0].serial, wrong, actor="holder")
    for record in rsa:
        key = generate_private_key(KeyType.EC_P256)
        new = platform.rotation.submit_csr(
            campaign.id, record.serial, _csr(key, "ignored.test"), actor="holder"
        )
        assert new.certificate().public_key() == key.public_key()
        assert new.sans == record.sans  # the names of the old certificate, not of the CSR
    with pytest.raises(Conflict, match="already replaced"):
        platform.rotation.submit_csr(campaign.id, rsa[0].serial, wrong, actor="holder")
    with pytest.raises(NotFound):
        platform.rotation.submit_csr(campaign.id, "abcdef", wrong, actor="holder")
    assert platform.rotation.run(campaign.id).campaign.status is CampaignStatus.COMPLETED


def _csr(key: ec.EllipticCurvePrivateKey, name: str) -> bytes:  # type: ignore[valid-type]
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


def test_a_campaign_killed_halfway_resumes_without_duplicates(
    platform: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    rsa, _ = _mixed_fleet(platform)
    out = tmp_path / "keys"
    campaign = platform.rotation.create(_to_p256(out), actor="test")
    # A run died holding the lease of two items, after writing the key of one and getting
    # its certificate issued (lineage not recorded)
    dead = Lease("dead", secrets.token_hex(16), clock.now() + dt.timedelta(minutes=5))
    with platform.store.unit_of_work() as uow:
        claimed = uow.lifecycle.campaigns.claim(campaign.id, clock.now(), dead, 2)
    assert len(claimed) == 2
    half = claimed[0]
    (out / half.serial).mkdir(parents=True)
    key = generate_private_key(KeyType.EC_P256)
    (out / half.serial / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    orphan = issue(platform, *_fresh_by_id(platform, half.certificate_id).sans, key=key, team="web").record
    # Resuming before the lease ran out does the rest and leaves the leased items
    report = platform.rotation.run(campaign.id)
    assert (
        report.counts.of(ItemState.REISSUED) == 2
        and report.counts.of(ItemState.PENDING) == 2
        and report.campaign.status is CampaignStatus.RUNNING
    )
    clock.advance(dt.timedelta(minutes=5))
    report = platform.rotation.run(campaign.id)
    assert report.campaign.status is CampaignStatus.COMPLETED
    for record in rsa:
        assert len(successors(platform, record)) == 1
        assert len(certificates_named(platform, record.sans[0])) == 2  # no second replacement
    assert successors(platform, _fresh_by_id(platform, half.certificate_id)) == [orphan.id]


def test_run_to_end_waits_out_a_lease_another_worker_holds(platform: Platform, clock: FakeClock) -> None:
    rsa, _ = _mixed_fleet(platform)
    campaign = platform.rotation.create(CampaignRequest(Selection.parse("key=rsa-2048")), actor="test")
    with platform.store.unit_of_work() as uow:  # a worker that died leased one item for 5 minutes
        dead = Lease("dead", secrets.token_hex(16), clock.now() + dt.timedelta(minutes=5))
        assert len(uow.lifecycle.campaigns.claim(campaign.id, clock.now(), dead, 1)) == 1
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the other worker's lease runs out while we wait
        waits.append(seconds)
        clock.advance(dt.timedelta(minutes=1))

    rotation = RotationService(
        platform.store.unit_of_work,
        platform.renewal,
        platform.authorities,
        lambda serial, reason, *, actor: None,
        clock,
        platform.settings.lifecycle,
        sleep=sleep,
    )
    report = rotation.run_to_end(campaign.id)
    assert report.counts.of(ItemState.REISSUED) == len(rsa) and report.counts.of(ItemState.PENDING) == 0
    assert 5 <= len(waits) <= 6 and set(waits) == {0.5}  # polled until the dead lease ended
    for record in rsa:
        assert len(successors(platform, record)) == 1


def _fresh_by_id(platform: Platform, certificate_id: int) -> CertificateRecord:
    with platform.store.unit_of_work(read_only=True) as uow:
        found = uow.lifecycle.lineage.certificate(certificate_id)
    assert found is not None
    return found


def test_moving_to_a_new_issuing_ca_keeps_the_keys(platform: Platform, clock: FakeClock) -> None:
    fleet = [issue(platform, f"m{i}.example.test").record for i in range(3)]
    old_ca = platform.authorities.issuing_authority().issuer.id
    clock.advance(dt.timedelta(minutes=1))
    rotation = platform.ca_rotation.rotate(None, actor="test")
    assert rotation.retired == [old_ca]
    with pytest.raises(InvalidInput, match="not the issuing CA"):
        platform.rotation.create(CampaignRequest(Selection.parse(f"ca={old_ca}"), to_ca=old_ca), actor="test")
    request = CampaignRequest(Selection.parse(f"issuer={old_ca}"), to_ca=rotation.new_ca.id)
    report = platform.rotation.run(platform.rotation.create(request, actor="test").id)
    assert report.campaign.status is CampaignStatus.COMPLETED  # no revocation asked
    for old in fleet:
        new = platform.renewal.lineage(old)[-1]
        assert new.issuer_ca_id == rotation.new_ca.id
        assert new.certificate().public_key() == old.certificate().public_key()
        assert _fresh(platform, old).status is Status.SUPERSEDED  # replaced, not revoked


def test_acme_and_agent_certificates_wait_for_their_clients(platform: Platform, clock: FakeClock) -> None:
    agent = issue(platform, "svc.example.test", team="web", tags=("agent:web-1",)).record
    campaign = platform.rotation.create(CampaignRequest(Selection.parse("team=web")), actor="test")
    # Its ARI window moved to now, which the agent (and ACME clients) poll
    [(start,)] = rows(
        platform.database, "SELECT window_start FROM acme_renewal_overrides WHERE serial = :s", s=agent.serial
    )
    assert start is not None
    report = platform.rotation.run(campaign.id)
    assert report.counts.of(ItemState.AWAITING_CLIENT) == 1
    # The agent renews with a new key: the campaign notices and records the lineage
    clock.advance(dt.timedelta(minutes=5))
    replacement = issue(platform, "svc.example.test", team="web", tags=("agent:web-1",)).record
    report = platform.rotation.run(campaign.id)
    assert report.campaign.status is CampaignStatus.COMPLETED
    assert successors(platform, agent) == [replacement.id]
    assert rows(
        platform.database, "SELECT kind FROM certificate_lineage WHERE certificate_id = :i", i=replacement.id
    ) == [("acme",)]


def _sighting(record: CertificateRecord, place: str, at: dt.datetime) -> Sighting:
    assert record.id is not None
    spki = (
        record.certificate()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return Sighting(record.id, LocationKind.ENDPOINT, place, "", 0, True, spki.hex()[:64], at, "scan1")


def test_scans_move_items_to_deployed_and_confirmed(platform: Platform, clock: FakeClock) -> None:
    old = issue(platform, "web.example.test").record
    with platform.store.unit_of_work() as uow:
        uow.locations.record(
            [_sighting(old, "192.0.2.1:443", clock.now()), _sighting(old, "192.0.2.2:443", clock.now())]
        )
    campaign = platform.rotation.create(
        CampaignRequest(Selection.parse("name=web.example.test")), actor="test"
    )
    platform.rotation.run(campaign.id)
    [item] = platform.rotation.items(campaign.id)
    assert item.state is ItemState.REISSUED and item.milestone == "reissued"
    new = _fresh_by_id(platform, item.successor_id or 0)
    clock.advance(DAY)
    with platform.store.unit_of_work() as uow:
        uow.locations.record([_sighting(new, "192.0.2.1:443", clock.now())])
    platform.rotation.report(campaign.id, refresh=True)
    [item] = platform.rotation.items(campaign.id)
    assert item.milestone == "deployed"  # seen at one of the two places
    with platform.store.unit_of_work() as uow:
        uow.locations.record([_sighting(new, "192.0.2.2:443", clock.now())])
    report = platform.rotation.report(campaign.id, refresh=True)
    [item] = platform.rotation.items(campaign.id)
    assert item.milestone == "confirmed" and report.counts.confirmed == 1
    assert platform.rotation.mark_deployed(campaign.id, old.serial).deployed_at == item.deployed_at


def test_revocation_waits_for_revoke_old_after(platform: Platform, clock: FakeClock) -> None:
    old = issue(platform, "later.example.test").record
    request = CampaignRequest(Selection.parse("name=later.example.test"), revoke_old_after=7 * DAY)
    campaign = platform.rotation.create(request, actor="test")
    assert platform.rotation.run(campaign.id).campaign.status is CampaignStatus.WAITING
    clock.advance(6 * DAY)
    assert platform.rotation.report(campaign.id, refresh=True).counts.old_revoked == 0
    clock.advance(DAY)
    report = platform.rotation.report(campaign.id, refresh=True)
    assert report.counts.old_revoked == 1 and report.campaign.status is CampaignStatus.COMPLETED
    assert _fresh(platform, old).status is Status.REVOKED


def test_the_compromise_playbook(platform: Platform, clock: FakeClock) -> None:
    fleet = [issue(platform, f"c{i}.example.test", team="web").record for i in range(3)]
    bad = platform.authorities.issuing_authority().issuer
    root = platform.authorities.root()
    clock.advance(dt.timedelta(minutes=1))
    result = platform.ca_rotation.compromise(bad.id, actor="test")
    assert result.retired == [bad.id] and result.revoked_ca == bad.id and result.campaign is not None
    # The compromised CA is on the root's CRL
    crl = x509.load_der_x509_crl(platform.revocation.crl(root.id).der)
    entry = crl.get_revoked_certificate_by_serial_number(bad.certificate.serial_number)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.ca_compromise
    )
    report = platform.rotation.run(result.campaign.id)
    assert report.campaign.status is CampaignStatus.COMPLETED
    for old in fleet:
        new = platform.renewal.lineage(old)[-1]
        assert new.issuer_ca_id == result.new_ca.id != bad.id
        assert _fresh(platform, old).revocation_reason == "caCompromise"
    # Running it again finishes nothing twice: same CA, same campaign
    again = platform.ca_rotation.compromise(bad.id, actor="test")
    assert again.campaign is not None
    assert (again.new_ca.id, again.retired, again.campaign.id) == (result.new_ca.id, [], result.campaign.id)
    assert len([c for c in platform.authorities.hierarchy() if c.role == "intermediate"]) == 2
    with pytest.raises(InvalidInput, match="root cannot be revoked"):
        platform.ca_rotation.compromise(root.id, actor="test")


def test_a_root_expiring_too_soon_is_reported(platform: Platform, clock: FakeClock) -> None:
    assert platform.ca_rotation.warnings() == []
    root = platform.authorities.root()
    clock.set(root.not_after - 3 * 365 * DAY)
    result = platform.ca_rotation.rotate(None, actor="test")
    assert [w.severity for w in result.warnings if w.ca_id == root.id] == ["warning"]
    assert result.new_ca.not_after == root.not_after  # cut to the root's end
    clock.set(root.not_after - 100 * DAY)
    assert {w.severity for w in platform.ca_rotation.warnings() if w.ca_id == root.id} == {
        "warning",
        "critical",
    }

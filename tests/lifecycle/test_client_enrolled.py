"""Certificates devices enrolled over SCEP and EST in the lifecycle, on SQLite and PostgreSQL:
renewal planning leaves them to their devices (an ``external`` job naming the protocol,
never a server-side reissue the device would not receive), a compromise campaign takes them
in and waits for the device's re-enrolment (SCEP and EST have no "renew now" signal), links
a SCEP renewal as the replacement and revokes the old certificate, and at the deadline
revokes what no device replaced; expiry notices and the cryptographic inventory count them as
any certificate of certfleet's CA."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from certfleet.app import Platform
from certfleet.inventory import CertificateRecord, Source, Status
from certfleet.lifecycle.campaigns import CampaignRequest, CampaignStatus, ItemAction, ItemState
from certfleet.lifecycle.jobs import JobState
from certfleet.lifecycle.selection import Selection
from certfleet.x509 import fingerprint_sha256
from tests.conftest import FakeClock
from tests.lifecycle.fleet import est_enrol, issue, scep_enrol
from tests.services.snapshot import rows

HOUR = dt.timedelta(hours=1)


def _record(platform: Platform, cert: x509.Certificate) -> CertificateRecord:
    with platform.store.unit_of_work(read_only=True) as uow:
        record = uow.certificates.get_by_fingerprint(fingerprint_sha256(cert))
    assert record is not None
    return record


def _fresh(platform: Platform, record: CertificateRecord) -> CertificateRecord:
    with platform.store.unit_of_work(read_only=True) as uow:
        found = uow.lifecycle.lineage.certificate(record.id or 0)
    assert found is not None
    return found


def test_planning_leaves_scep_and_est_certificates_to_their_devices(
    platform: Platform, clock: FakeClock
) -> None:
    # Given a certificate issued over REST and one enrolled over each device protocol
    rest = issue(platform, "rest.example.test", team="web", days=90).record
    scep = _record(platform, scep_enrol(platform, "printer.example.test")[0])
    est = _record(platform, est_enrol(platform, "plc.example.test"))
    assert (scep.source, scep.team, est.source, est.team) == (Source.SCEP, "devices", Source.EST, "lab")
    # When renewal is planned
    planned, _ = platform.renewal.plan()
    # Then each has its job: the server renews the REST one, the devices their own
    assert planned == 3
    jobs = {r.serial: platform.renewal.job(r.id or 0) for r in (rest, scep, est)}
    assert {s: j.state for s, j in jobs.items() if j} == {
        rest.serial: JobState.SCHEDULED,
        scep.serial: JobState.EXTERNAL,
        est.serial: JobState.EXTERNAL,
    }
    scep_job, est_job = jobs[scep.serial], jobs[est.serial]
    assert scep_job is not None and est_job is not None
    assert scep_job.last_error is not None and "enrolled over SCEP" in scep_job.last_error
    assert est_job.last_error is not None and "enrolled over EST" in est_job.last_error
    # ... and once all three are due, the server renews only its own: a device's certificate
    # is never reissued server-side (the device would never receive it)
    clock.set(max(j.renew_at for j in (scep_job, est_job, jobs[rest.serial]) if j) + dt.timedelta(minutes=1))
    outcomes = platform.renewal.run_due().outcomes
    assert [(o.serial, o.state) for o in outcomes] == [(rest.serial, JobState.DONE)]
    assert platform.renewal.job(scep.id or 0) == scep_job and platform.renewal.job(est.id or 0) == est_job


def test_a_compromise_waits_for_devices_then_revokes_what_they_did_not_replace(
    platform: Platform, clock: FakeClock
) -> None:
    # Given a SCEP device and an EST device enrolled from the issuing CA
    old_cert, key = scep_enrol(platform, "printer.example.test")
    scep, est = _record(platform, old_cert), _record(platform, est_enrol(platform, "plc.example.test"))
    bad = platform.authorities.issuing_authority().issuer
    # When the CA is declared compromised, with an hour to replace what it issued
    clock.advance(dt.timedelta(minutes=1))
    result = platform.ca_rotation.compromise(bad.id, actor="test", deadline=HOUR)
    assert result.campaign is not None
    campaign = result.campaign.id
    # Then both are items waiting for their device, which the preview and status name
    items = {i.serial: i for i in platform.rotation.items(campaign)}
    assert {s: (i.action, i.state) for s, i in items.items()} == {
        scep.serial: (ItemAction.ARI, ItemState.AWAITING_CLIENT),
        est.serial: (ItemAction.ARI, ItemState.AWAITING_CLIENT),
    }
    [planned] = platform.rotation.preview(CampaignRequest(Selection.parse(f"serial={scep.serial}")))
    assert planned.action is ItemAction.ARI and "enrolled over SCEP" in planned.note
    assert "waits for its re-enrolment" in planned.note
    waiting, _ = items[est.serial].waiting(result.campaign)
    assert waiting == "its client (ACME, SCEP or EST) to renew it"
    # When the SCEP device renews (a RenewalReq signed by its current certificate)
    new_cert, _ = scep_enrol(platform, "printer.example.test", signer=old_cert, key=key)
    renewed = _record(platform, new_cert)
    assert renewed.issuer_ca_id == result.new_ca.id and renewed.team == "devices"
    report = platform.rotation.run(campaign)
    # Then its renewal is the item's replacement and the old certificate is revoked
    done = {i.serial: i for i in platform.rotation.items(campaign)}[scep.serial]
    assert done.successor_id == renewed.id and done.old_revoked_at is not None
    assert (_fresh(platform, scep).status, _fresh(platform, scep).revocation_reason) == (
        Status.REVOKED,
        "caCompromise",
    )
    assert report.campaign.status is CampaignStatus.WAITING  # the EST device has not re-enrolled
    assert _fresh(platform, est).status is Status.ACTIVE
    # When the deadline passes without the EST device
    clock.advance(HOUR)
    [report] = [r for r in platform.rotation.advance_open() if r.campaign.id == campaign]
    # Then its certificate is revoked anyway and the campaign completes
    assert report.campaign.status is CampaignStatus.COMPLETED
    gone = _fresh(platform, est)
    assert (gone.status, gone.revocation_reason) == (Status.REVOKED, "caCompromise")
    overdue = platform.rotation.items(campaign, state=ItemState.OVERDUE_REVOKED)
    assert [i.serial for i in overdue] == [est.serial]
    assert _fresh(platform, renewed).status is Status.ACTIVE


def test_the_cryptographic_inventory_counts_device_certificates_as_managed(platform: Platform) -> None:
    # Given certificates of team "devices" from SCEP and team "lab" from EST, all RSA-2048
    scep_enrol(platform, "printer.example.test")
    est_enrol(platform, "plc.example.test")
    # Then the exposure report counts each as managed by certfleet's CA
    for team in ("devices", "lab"):
        exposure = platform.crypto.exposure(team)
        assert {(e.algorithm, e.count, e.managed) for e in exposure} == {("rsa-2048", 1, 1)}


def test_expiry_notices_cover_device_certificates(platform: Platform, clock: FakeClock) -> None:
    # Given a SCEP and an EST certificate near the end of their lifetimes
    scep = _record(platform, scep_enrol(platform, "printer.example.test")[0])
    est = _record(platform, est_enrol(platform, "plc.example.test"))
    clock.set(min(scep.not_after, est.not_after) - dt.timedelta(days=6))
    # When the expiry scan runs
    platform.notifications.expiring_scan()
    # Then each has its notice, for its team, as any certificate of the CA
    found = rows(platform.database, "SELECT subject, team FROM notification_events WHERE kind = 'expiring'")
    assert sorted(found) == sorted([(scep.serial, "devices"), (est.serial, "lab")])

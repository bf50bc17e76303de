"""The server side of agents, on SQLite and PostgreSQL: join tokens are single-use and
expire, enrolment certifies the agent's own key, identities authenticate until revoked,
issuance stays within the agent's names, and reports become certificate locations."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from certfleet.app import Platform
from certfleet.ca import IssuanceRequest
from certfleet.discovery.records import LocationKind
from certfleet.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from certfleet.inventory import Source, Status
from certfleet.services.agents import DeploymentReport, DeploymentStatus
from certfleet.store._notify_models import NotificationEventRow
from certfleet.x509 import KeyType, fingerprint_sha256, generate_private_key, to_pem
from tests.agent.csrs import csr_for
from tests.agent.peers import self_signed
from tests.api.conftest import stored_rows
from tests.conftest import FakeClock


def _enrolled(platform: Platform, host: str = "web1.example.test", **kwargs: object):  # type: ignore[no-untyped-def]
    minted = platform.agents.create_join_token(
        host, team="web", ttl=dt.timedelta(hours=1), actor="test", **kwargs
    )  # type: ignore[arg-type]
    key = generate_private_key(KeyType.EC_P256)
    enrolment = platform.agents.enroll(minted.token, csr_for(key, ["ignored.example.test"]).encode())
    return enrolment, key


def test_join_token_is_stored_only_as_a_hash(platform: Platform) -> None:
    minted = platform.agents.create_join_token(
        "Web1.Example.Test", team="web", ttl=dt.timedelta(hours=1), actor="t"
    )
    secret = minted.token.split("_", 2)[2]
    assert minted.record.host == "web1.example.test"
    assert secret not in minted.record.secret_hash
    with platform.database.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT secret_hash FROM agent_join_tokens").scalar_one()
    assert stored == minted.record.secret_hash and secret not in stored


def test_enrolment_certifies_the_agents_own_key_as_a_client_identity(platform: Platform) -> None:
    enrolment, key = _enrolled(platform)
    cert = enrolment.issued.certificate
    assert cert.public_key() == key.public_key()
    assert enrolment.agent.name == "web1.example.test" and enrolment.agent.team == "web"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # The CSR asked for another name: the token, not the agent, decides who it is.
    assert san.get_values_for_type(x509.DNSName) == ["web1.example.test"]
    record = platform.inventory.find(fingerprint_sha256(cert))
    assert record.profile == "tls-client" and record.team == "web"
    der = cert.public_bytes(serialization.Encoding.DER)
    assert platform.agents.authenticate(der).name == "web1.example.test"


def test_a_join_token_cannot_be_replayed(platform: Platform) -> None:
    minted = platform.agents.create_join_token(
        "web1.example.test", team=None, ttl=dt.timedelta(hours=1), actor="t"
    )
    platform.agents.enroll(minted.token, csr_for(generate_private_key(KeyType.EC_P256)).encode())
    identities = stored_rows(platform, "agent_identities")
    with pytest.raises(Unauthenticated, match="already used"):
        platform.agents.enroll(minted.token, csr_for(generate_private_key(KeyType.EC_P256)).encode())
    assert stored_rows(platform, "agent_identities") == identities


def test_concurrent_enrolments_with_one_token_yield_one_identity(platform: Platform) -> None:
    minted = platform.agents.create_join_token(
        "race.example.test", team=None, ttl=dt.timedelta(hours=1), actor="t"
    )
    csrs = [csr_for(generate_private_key(KeyType.EC_P256)).encode() for _ in range(4)]
    results: list[str] = []
    barrier = threading.Barrier(len(csrs))

    def attempt(csr: bytes) -> None:
        barrier.wait()
        try:
            platform.agents.enroll(minted.token, csr)
            results.append("ok")
        except Unauthenticated:
            results.append("refused")

    threads = [threading.Thread(target=attempt, args=(csr,)) for csr in csrs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok", "refused", "refused", "refused"]
    assert stored_rows(platform, "agent_identities") == 1


def test_an_expired_join_token_is_refused(platform: Platform, clock: FakeClock) -> None:
    minted = platform.agents.create_join_token(
        "web1.example.test", team=None, ttl=dt.timedelta(minutes=5), actor="t"
    )
    clock.advance(dt.timedelta(minutes=5))
    with pytest.raises(Unauthenticated, match="expired"):
        platform.agents.enroll(minted.token, csr_for(generate_private_key(KeyType.EC_P256)).encode())
    assert stored_rows(platform, "agents") == 0


@pytest.mark.parametrize(
    ("token", "message"),
    [("nonsense", "malformed"), ("cfj_abc_def", "invalid join token"), ("cf_abc_def", "malformed")],
)
def test_bad_join_tokens_are_refused(platform: Platform, token: str, message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        platform.agents.enroll(token, csr_for(generate_private_key(KeyType.EC_P256)).encode())


def test_a_bad_csr_does_not_spend_the_token(platform: Platform) -> None:
    minted = platform.agents.create_join_token(
        "web1.example.test", team=None, ttl=dt.timedelta(hours=1), actor="t"
    )
    with pytest.raises(InvalidInput):
        platform.agents.enroll(
            minted.token, b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
        )
    platform.agents.enroll(minted.token, csr_for(generate_private_key(KeyType.EC_P256)).encode())


@pytest.mark.parametrize(
    ("host", "ttl", "message"),
    [
        ("*.example.test", dt.timedelta(hours=1), "no wildcard"),
        ("10.0.0.1", dt.timedelta(hours=1), "no IP address"),
        ("bad_host", dt.timedelta(hours=1), "not a valid DNS name"),
        ("ok.example.test", dt.timedelta(days=8), "between 1 second and 7 days"),
    ],
)
def test_join_token_arguments_are_checked(
    platform: Platform, host: str, ttl: dt.timedelta, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        platform.agents.create_join_token(host, team=None, ttl=ttl, actor="t")


def test_a_revoked_agent_is_refused_and_its_identity_revoked(platform: Platform) -> None:
    enrolment, _ = _enrolled(platform)
    der = enrolment.issued.certificate.public_bytes(serialization.Encoding.DER)
    platform.agents.revoke("web1.example.test", actor="test")
    with pytest.raises(Forbidden, match="revoked"):
        platform.agents.authenticate(der)
    record = platform.inventory.find(fingerprint_sha256(enrolment.issued.certificate))
    assert record.status is Status.REVOKED  # so CRL and OCSP say so too
    with pytest.raises(Conflict, match="already revoked"):
        platform.agents.revoke("web1.example.test", actor="test")
    with pytest.raises(NotFound):
        platform.agents.revoke("nobody.example.test", actor="test")


def test_a_certificate_that_is_not_an_identity_is_refused(platform: Platform) -> None:
    _enrolled(platform)
    other = platform.issuance.issue(
        IssuanceRequest(
            "tls-client", generate_private_key(KeyType.EC_P256).public_key(), ("web1.example.test",)
        ),
        actor="test",
    )
    with pytest.raises(Unauthenticated, match="not an agent identity"):
        platform.agents.authenticate(other.issued.certificate.public_bytes(serialization.Encoding.DER))


def test_re_enrolment_replaces_the_old_identity(platform: Platform, clock: FakeClock) -> None:
    first, _ = _enrolled(platform)
    clock.advance(dt.timedelta(seconds=1))
    second, _ = _enrolled(platform)
    with pytest.raises(Forbidden, match="replaced"):
        platform.agents.authenticate(first.issued.certificate.public_bytes(serialization.Encoding.DER))
    assert platform.agents.authenticate(second.issued.certificate.public_bytes(serialization.Encoding.DER))


def test_an_expired_identity_is_refused_and_a_renewed_one_works(platform: Platform, clock: FakeClock) -> None:
    enrolment, _ = _enrolled(platform)
    agent = enrolment.agent
    renewed = platform.agents.renew_identity(agent, csr_for(generate_private_key(KeyType.EC_P256)).encode())
    assert renewed.certificate.serial_number != enrolment.issued.certificate.serial_number
    assert (
        platform.agents.authenticate(renewed.certificate.public_bytes(serialization.Encoding.DER)).name
        == agent.name
    )
    clock.advance(dt.timedelta(days=31))
    with pytest.raises(Unauthenticated, match="expired"):
        platform.agents.authenticate(renewed.certificate.public_bytes(serialization.Encoding.DER))


def test_issuance_stays_within_the_agents_names(platform: Platform) -> None:
    enrolment, _ = _enrolled(platform, allow_names=["*.example.test"])
    agent = enrolment.agent
    key = generate_private_key(KeyType.EC_P256)
    result = platform.agents.issue(
        agent, "www", csr_for(key, ["www.example.test"]).encode(), profile="tls-server"
    )
    assert result.record.team == "web" and not result.reused
    assert f"agent:{agent.name}" in result.record.tags
    with pytest.raises(Forbidden, match=r"www\.other\.test"):
        platform.agents.issue(agent, "x", csr_for(key, ["www.other.test"]).encode(), profile="tls-server")


def test_default_policy_is_the_host_name_alone(platform: Platform) -> None:
    enrolment, _ = _enrolled(platform)
    key = generate_private_key(KeyType.EC_P256)
    platform.agents.issue(
        enrolment.agent, "self", csr_for(key, ["web1.example.test"]).encode(), profile="tls-server"
    )
    with pytest.raises(Forbidden):
        platform.agents.issue(
            enrolment.agent, "x", csr_for(key, ["api.example.test"]).encode(), profile="tls-server"
        )


def test_a_retry_with_the_same_key_gets_the_same_certificate(platform: Platform) -> None:
    enrolment, _ = _enrolled(platform, allow_names=["*.example.test"])
    key = generate_private_key(KeyType.EC_P256)
    csr = csr_for(key, ["www.example.test"]).encode()
    first = platform.agents.issue(enrolment.agent, "www", csr, profile="tls-server")
    count = stored_rows(platform, "certificates")
    again = platform.agents.issue(enrolment.agent, "www", csr, profile="tls-server")
    assert again.reused and again.record.fingerprint_sha256 == first.record.fingerprint_sha256
    assert [c.subject for c in again.issued.chain] == [c.subject for c in first.issued.chain]
    assert stored_rows(platform, "certificates") == count
    fresh = platform.agents.issue(
        enrolment.agent,
        "www",
        csr_for(generate_private_key(KeyType.EC_P256), ["www.example.test"]).encode(),
        profile="tls-server",
    )
    assert not fresh.reused


def _report(platform: Platform, agent, pem: bytes, status=DeploymentStatus.DEPLOYED, **kwargs):  # type: ignore[no-untyped-def]
    return platform.agents.report(
        agent,
        DeploymentReport(
            name="www",
            status=status,
            certificate_pem=pem,
            files={"key": "/etc/nginx/tls/www.key", "fullchain": "/etc/nginx/tls/www.crt"},
            endpoint="127.0.0.1:443",
            sni="www.example.test",
            **kwargs,
        ),
    )


def test_a_deployment_report_records_the_locations(platform: Platform) -> None:
    enrolment, _ = _enrolled(platform, allow_names=["*.example.test"])
    agent = enrolment.agent
    first = platform.agents.issue(
        agent,
        "www",
        csr_for(generate_private_key(KeyType.EC_P256), ["www.example.test"]).encode(),
        profile="tls-server",
    )
    _report(platform, agent, to_pem(first.issued.fullchain).encode())
    with platform.store.unit_of_work() as uow:
        assert first.record.id is not None
        places = {(loc.kind, loc.location, loc.sni) for loc in uow.locations.for_certificate(first.record.id)}
    assert places == {
        (LocationKind.FILE, "file://web1.example.test/etc/nginx/tls/www.key", ""),
        (LocationKind.FILE, "file://web1.example.test/etc/nginx/tls/www.crt", ""),
        (LocationKind.ENDPOINT, "127.0.0.1:443", "www.example.test"),
    }
    # A renewal deployed to the same places: the old certificate is gone from them.
    second = platform.agents.issue(
        agent,
        "www",
        csr_for(generate_private_key(KeyType.EC_P256), ["www.example.test"]).encode(),
        profile="tls-server",
    )
    _report(platform, agent, to_pem(second.issued.fullchain).encode())
    with platform.store.unit_of_work() as uow:
        old = uow.locations.for_certificate(first.record.id)
        assert second.record.id is not None
        new = uow.locations.for_certificate(second.record.id)
    assert all(loc.gone_at is not None for loc in old)
    assert len(new) == 3 and all(loc.gone_at is None for loc in new)
    [latest] = platform.agents.deployments("web1.example.test")
    assert latest.fingerprint_sha256 == second.record.fingerprint_sha256
    assert latest.to_dict()["paths"] == ["/etc/nginx/tls/www.crt", "/etc/nginx/tls/www.key"]


def test_a_failed_deployment_is_recorded_but_is_no_location(platform: Platform) -> None:
    enrolment, _ = _enrolled(platform, allow_names=["*.example.test"])
    issued = platform.agents.issue(
        enrolment.agent,
        "www",
        csr_for(generate_private_key(KeyType.EC_P256), ["www.example.test"]).encode(),
        profile="tls-server",
    )
    deployment = _report(
        platform,
        enrolment.agent,
        to_pem(issued.issued.fullchain).encode(),
        DeploymentStatus.ROLLED_BACK,
        detail="reload failed",
    )
    assert deployment.status is DeploymentStatus.ROLLED_BACK and deployment.detail == "reload failed"
    with platform.store.unit_of_work() as uow:
        assert issued.record.id is not None
        assert not uow.locations.for_certificate(issued.record.id)
        # ... and it becomes a notification event, written with the report.
        newest = uow.outbox.newest_event_id()
        [event] = [e for e in uow.outbox.unrouted(100, newest) if e.kind == "renewal-failed"]
        row = uow.session.get(NotificationEventRow, event.id)
        assert row is not None
        subject, payload = row.subject, json.loads(row.payload_json)
    assert subject == issued.record.serial and event.team == "web"
    details = payload["details"]
    assert details["host"] == "web1.example.test" and details["reason"] == "reload failed"
    assert details["status"] == "rolled_back" and details["endpoint"] == "127.0.0.1:443"


def test_an_external_certificate_is_imported_within_the_agents_names(platform: Platform) -> None:
    enrolment, _ = _enrolled(platform, allow_names=["*.example.test"])
    outside = _self_signed(["www.example.test"])
    deployment = _report(platform, enrolment.agent, outside, issuer="acme")
    record = platform.inventory.find(deployment.fingerprint_sha256)
    assert record.source is Source.IMPORTED and record.team == "web" and "acme" in record.tags
    with pytest.raises(Forbidden, match=r"evil\.test"):
        _report(platform, enrolment.agent, _self_signed(["evil.test"]), issuer="acme")


def test_another_teams_certificate_cannot_be_reported(platform: Platform) -> None:
    enrolment, _ = _enrolled(platform, allow_names=["*.example.test"])
    theirs = platform.issuance.issue(
        IssuanceRequest(
            "tls-server", generate_private_key(KeyType.EC_P256).public_key(), ("www.example.test",)
        ),
        actor="test",
        team="other",
    )
    with pytest.raises(Forbidden, match="another team"):
        _report(platform, enrolment.agent, to_pem(theirs.issued.fullchain).encode())


@pytest.mark.parametrize(
    ("files", "endpoint", "message"),
    [
        ({"key": "relative/path"}, None, "absolute"),
        ({"secret": "/x"}, None, "unknown file kind"),
        ({"key": "/x"}, "no-port", "HOST:PORT"),
    ],
)
def test_bad_reports_are_refused(
    platform: Platform, files: dict[str, str], endpoint: str | None, message: str
) -> None:
    enrolment, _ = _enrolled(platform, allow_names=["*.example.test"])
    report = DeploymentReport(
        "www", DeploymentStatus.DEPLOYED, _self_signed(["www.example.test"]), files, endpoint
    )
    with pytest.raises(InvalidInput, match=message):
        platform.agents.report(enrolment.agent, report)
    assert stored_rows(platform, "agent_deployments") == 0


def test_instructions_follow_the_renewal_window_and_renew_now(platform: Platform, clock: FakeClock) -> None:
    enrolment, _ = _enrolled(platform, allow_names=["*.example.test"])
    issued = platform.agents.issue(
        enrolment.agent,
        "www",
        csr_for(generate_private_key(KeyType.EC_P256), ["www.example.test"]).encode(),
        profile="tls-server",
        validity_days=90,
    )
    [instruction] = platform.agents.instructions(enrolment.agent)
    assert instruction.name == "www" and instruction.serial == issued.record.serial
    assert (
        instruction.renew_from
        == issued.record.not_after - (issued.record.not_after - issued.record.not_before) / 3
    )
    # An operator's "renew now" (the ACME server's ARI override) moves the window to the past.
    platform.acme.renew_now([issued.record.serial], actor="test")
    [instruction] = platform.agents.instructions(enrolment.agent)
    assert instruction.renew_by <= clock.now()


def _self_signed(names: list[str]) -> bytes:
    return self_signed(names)[1]

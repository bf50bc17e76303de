"""The compromise drill's rules, on SQLite and PostgreSQL with a fake clock: ARI windows that
say "renew now", agents renewing (their identity too) when the server says so, the old
identity refused once the new one is in use, the deadline that revokes what is still not
replaced with a ``rotation-overdue`` notification, and a status naming what each item waits
for and since when."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certfleet.agent import AgentState, Runner
from certfleet.agent.config import AgentConfig, CertificateSpec
from certfleet.app import Platform
from certfleet.clock import iso
from certfleet.errors import Forbidden, InvalidInput
from certfleet.inventory import CertificateRecord, Status
from certfleet.lifecycle.campaigns import CampaignRequest, CampaignStatus, ItemState
from certfleet.lifecycle.selection import Selection
from certfleet.x509 import KeyType, fingerprint_sha256, generate_private_key
from tests.agent.csrs import csr_for
from tests.agent.fakes import FakeServer, enrolled_state
from tests.agent.material import ThrowawayCa, spec_for
from tests.conftest import Cli, FakeClock
from tests.lifecycle.fleet import issue
from tests.services.snapshot import rows

HOUR = dt.timedelta(hours=1)


def _fresh(platform: Platform, record: CertificateRecord) -> CertificateRecord:
    with platform.store.unit_of_work(read_only=True) as uow:
        found = uow.lifecycle.lineage.certificate(record.id or 0)
    assert found is not None
    return found


def _compromise(platform: Platform, clock: FakeClock, deadline: dt.timedelta = 24 * HOUR) -> Any:
    bad = platform.authorities.issuing_authority().issuer
    clock.advance(dt.timedelta(minutes=1))
    result = platform.ca_rotation.compromise(bad.id, actor="test", deadline=deadline)
    assert result.campaign is not None
    return result


def _enrol(platform: Platform, host: str) -> tuple[x509.Certificate, Any]:
    minted = platform.agents.create_join_token(host, team="web", ttl=HOUR, actor="test")
    key = generate_private_key(KeyType.EC_P256)
    return platform.agents.enroll(minted.token, csr_for(key).encode()).issued.certificate, key


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# -- ARI windows ------------------------------------------------------------------------------


def test_a_compromise_moves_client_windows_wholly_into_the_past(platform: Platform, clock: FakeClock) -> None:
    # Given a certificate an agent renews and one a plain rotation will move
    held = issue(platform, "svc.example.test", team="web", tags=("agent:web-1",)).record
    spread = issue(platform, "spread.example.test", team="ops", tags=("agent:ops-1",)).record
    # When the issuing CA is declared compromised
    _compromise(platform, clock)
    # Then the ACME server's and the agent's windows ENDED already: renew at the next check
    # (RFC 9773 section 4.2), not at a random point of the coming hour
    now = clock.now()
    window = platform.acme.renewal_info.window_for(held)
    assert window.end < now and window.start < window.end
    # ... while a rotation that revokes nothing still spreads the fleet over the next hour
    rotation = platform.rotation.create(
        CampaignRequest(Selection.parse(f"serial={_fresh(platform, spread).serial}")), actor="test"
    )
    assert rotation.kind == "rotation"
    later = platform.acme.renewal_info.window_for(_fresh(platform, spread))
    assert later.start == now and later.end == now + HOUR


# -- the agent --------------------------------------------------------------------------------


class _ServerWithIdentityWindow(FakeServer):
    """The fake server, also saying when to renew the identity presented (as the real one
    does in ``GET /api/v1/agent/instructions``)."""

    def __init__(self, ca: ThrowawayCa, state: AgentState) -> None:
        super().__init__(ca)
        self.state = state
        self.identity_window: tuple[dt.datetime, dt.datetime] | None = None
        self.asked_with: list[int] = []  # serial of the identity each instructions call used

    def instructions(self) -> dict[str, Any]:
        body = super().instructions()
        presented = self.state.identity_certificate()
        self.asked_with.append(presented.serial_number)
        if self.identity_window is not None:
            start, end = self.identity_window
            body["identity"] = {
                "fingerprint_sha256": fingerprint_sha256(presented),
                "renew_from": start.isoformat(),
                "renew_by": end.isoformat(),
            }
        return body


def test_an_agent_renews_certificate_and_identity_when_the_window_has_ended(
    tmp_path: Path, clock: FakeClock
) -> None:
    ca = ThrowawayCa()
    state = AgentState(tmp_path / "state")
    enrolled_state(state, ca)
    server = _ServerWithIdentityWindow(ca, state)
    tls = tmp_path / "tls"
    tls.mkdir()
    spec = CertificateSpec(**{**spec_for(tls).__dict__, "reload": ("true",)})
    config = AgentConfig("a.yaml", "https://certfleet.test", (tls,), (spec,))
    agent = Runner(config, state, clock, client=server)  # type: ignore[arg-type]
    [first] = agent.run_once()
    assert first.fingerprint is not None
    assert [o.status for o in agent.run_once()] == ["unchanged"]
    before = state.identity_certificate()
    # Given the server moved both windows to one that ended an hour ago (a compromise)
    now = clock.now()
    server.windows["www"] = (first.fingerprint, now - 2 * HOUR, now - HOUR)
    server.identity_window = (now - 2 * HOUR, now - HOUR)
    # When the agent runs once
    [renewed] = agent.run_once()
    # Then it renewed and deployed the certificate, and rolled its identity, and asked again
    # with the new identity (so the server sees it in use)
    assert renewed.status == "deployed" and "server schedule" in renewed.detail
    after = state.identity_certificate()
    assert after.serial_number != before.serial_number and server.identity_reloads == 1
    assert server.asked_with[-2:] == [before.serial_number, after.serial_number]
    # A window not reached yet changes nothing
    server.identity_window = (now + 10 * HOUR, now + 11 * HOUR)
    agent.run_once()
    assert state.identity_certificate().serial_number == after.serial_number


def test_the_old_identity_is_refused_once_the_new_one_is_in_use(platform: Platform, clock: FakeClock) -> None:
    old, _ = _enrol(platform, "web1.example.test")
    agent = platform.agents.authenticate(_der(old))
    result = _compromise(platform, clock)
    # The server tells the agent to renew its identity now
    told = platform.agents.identity_instruction(_der(old))
    assert told is not None and told.renew_by < clock.now()
    # The agent renews it (authenticated by the old one) from the new CA
    clock.advance(dt.timedelta(seconds=5))
    new = platform.agents.renew_identity(agent, csr_for(generate_private_key(KeyType.EC_P256)).encode())
    assert new.issuer_id == result.new_ca.id
    report = platform.rotation.run(result.campaign.id)
    [item] = [i for i in platform.rotation.items(result.campaign.id) if i.holder == "web1.example.test"]
    assert item.state is ItemState.REISSUED and item.successor_serial == format(
        new.certificate.serial_number, "x"
    )
    # Not revoked before the agent has switched: a crash before it saved the new identity
    # must not lock it out
    assert item.old_revoked_at is None and report.campaign.status is CampaignStatus.WAITING
    clock.advance(dt.timedelta(seconds=5))
    assert platform.agents.authenticate(_der(old)).name == "web1.example.test"
    # When the agent authenticates with the new identity, the old one is revoked
    clock.advance(dt.timedelta(seconds=5))
    platform.agents.authenticate(_der(new.certificate))
    report = platform.rotation.run(result.campaign.id)
    assert report.campaign.status is CampaignStatus.COMPLETED
    [item] = [i for i in platform.rotation.items(result.campaign.id) if i.holder == "web1.example.test"]
    assert item.deployed_at is not None and item.old_revoked_at is not None
    with pytest.raises(Forbidden, match="has been revoked"):
        platform.agents.authenticate(_der(old))
    assert platform.agents.authenticate(_der(new.certificate)).name == "web1.example.test"


# -- the deadline -----------------------------------------------------------------------------


def _overdue_events(platform: Platform) -> list[tuple[str, str | None, dict[str, Any]]]:
    found = rows(
        platform.database,
        "SELECT subject, team, payload_json FROM notification_events WHERE kind = 'rotation-overdue'",
    )
    return [(s, t, json.loads(p) if isinstance(p, str) else p) for s, t, p in found]


def test_at_the_deadline_what_is_not_replaced_is_revoked_and_announced(
    platform: Platform, clock: FakeClock
) -> None:
    # Given a certificate the server reissues and one an agent that never runs again holds
    served = issue(platform, "api.example.test", team="web").record
    dead = issue(platform, "dead.example.test", team="web", tags=("agent:dead-1",)).record
    result = _compromise(platform, clock, deadline=HOUR)
    campaign = result.campaign.id
    report = platform.rotation.run(campaign)
    assert report.campaign.deadline_at == result.campaign.created_at + HOUR
    assert report.campaign.status is CampaignStatus.WAITING
    assert _fresh(platform, served).status is Status.REVOKED  # replaced, then revoked
    # Before the deadline the agent's certificate stays valid
    clock.advance(HOUR - dt.timedelta(seconds=1))
    platform.rotation.advance_open()
    assert _fresh(platform, dead).status is Status.ACTIVE and _overdue_events(platform) == []
    # At the deadline the scheduler's round revokes it anyway and the campaign completes
    clock.advance(dt.timedelta(seconds=1))
    [report] = [r for r in platform.rotation.advance_open() if r.campaign.id == campaign]
    assert report.campaign.status is CampaignStatus.COMPLETED
    assert report.counts.of(ItemState.OVERDUE_REVOKED) == 1
    gone = _fresh(platform, dead)
    assert (gone.status, gone.revocation_reason) == (Status.REVOKED, "caCompromise")
    [item] = platform.rotation.items(campaign, state=ItemState.OVERDUE_REVOKED)
    assert item.serial == dead.serial and item.old_revoked_at == clock.now()
    # ... with one rotation-overdue notification naming the host, for the certificate's team
    [(subject, team, payload)] = _overdue_events(platform)
    assert (subject, team) == (dead.serial, "web")
    assert payload["details"]["host"] == "dead-1" and payload["details"]["campaign"] == campaign
    assert payload["details"]["names"] == ["dead.example.test"]
    assert "dead-1 to renew it" in payload["details"]["waited_for"]
    platform.rotation.report(campaign, refresh=True)
    assert len(_overdue_events(platform)) == 1  # announced once


def test_a_deadline_must_lie_ahead(platform: Platform, clock: FakeClock) -> None:
    issue(platform, "x.example.test")
    bad = platform.authorities.issuing_authority().issuer.id
    with pytest.raises(InvalidInput, match="deadline must be in the future"):
        platform.ca_rotation.compromise(bad, actor="test", deadline=dt.timedelta(0))


# -- status -----------------------------------------------------------------------------------


def test_status_shows_what_each_item_waits_for_and_since_when(
    platform: Platform, clock: FakeClock, cli: Cli
) -> None:
    issue(platform, "svc.example.test", team="web", tags=("agent:web-1",))
    result = _compromise(platform, clock, deadline=2 * HOUR)
    campaign = result.campaign
    platform.rotation.run(campaign.id)
    shown = cli("rotate", "status", campaign.id, "--format", "json")
    assert shown.exit_code == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["deadline"] == iso(campaign.created_at + 2 * HOUR)
    [waiting] = data["waiting"]
    assert waiting["holder"] == "web-1" and waiting["state"] == "awaiting-client"
    assert waiting["waiting_for"] == "agent web-1 to renew it"
    assert waiting["since"] == iso(campaign.created_at)
    table = cli("rotate", "status", campaign.id)
    assert table.exit_code == 0 and "agent web-1 to renew it" in table.stdout
    refused = cli("ca", "compromise", result.new_ca.id, "--yes", "--deadline", "0")
    assert refused.exit_code == 2 and "--deadline must be at least 1s" in refused.stderr


def test_a_new_identity_used_before_the_scheduler_saw_it_still_counts(
    platform: Platform, clock: FakeClock
) -> None:
    old, _ = _enrol(platform, "web2.example.test")
    agent = platform.agents.authenticate(_der(old))
    result = _compromise(platform, clock)
    clock.advance(dt.timedelta(seconds=5))
    new = platform.agents.renew_identity(agent, csr_for(generate_private_key(KeyType.EC_P256)).encode())
    # The agent's next request, with the new identity, comes before any scheduler round
    platform.agents.authenticate(_der(new.certificate))
    [item] = [i for i in platform.rotation.items(result.campaign.id) if i.holder == "web2.example.test"]
    assert item.state is ItemState.REISSUED and item.deployed_at is not None
    assert platform.rotation.run(result.campaign.id).campaign.status is CampaignStatus.COMPLETED
    with pytest.raises(Forbidden, match="has been revoked"):
        platform.agents.authenticate(_der(old))

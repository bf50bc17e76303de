"""Agent runs against a fake server and real files: when to renew, deploy and report, the
rollback when the reload fails, the retry backoff, the outbox, and recovery after a crash."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from certfleet.agent import AgentState, Runner
from certfleet.agent.config import AgentConfig, CertificateSpec
from certfleet.agent.deploy import VersionStore
from certfleet.agent.targets import render_all
from certfleet.x509 import fingerprint_sha256, load_certificates
from tests.agent.fakes import FakeServer, enrolled_state
from tests.agent.material import ThrowawayCa, spec_for
from tests.conftest import FakeClock


@pytest.fixture
def ca() -> ThrowawayCa:
    return ThrowawayCa()


@pytest.fixture
def server(ca: ThrowawayCa) -> FakeServer:
    return FakeServer(ca)


@pytest.fixture
def state(tmp_path: Path, ca: ThrowawayCa) -> AgentState:
    state = AgentState(tmp_path / "state")
    enrolled_state(state, ca)
    return state


@pytest.fixture
def tls(tmp_path: Path) -> Path:
    path = tmp_path / "tls"
    path.mkdir()
    return path


def config_for(tls: Path, **changes: Any) -> AgentConfig:
    spec = spec_for(tls)
    spec = CertificateSpec(**{**spec.__dict__, "reload": ("true",), **changes})
    return AgentConfig("agent.yaml", "https://certfleet.test", (tls,), (spec,))


def runner(config: AgentConfig, state: AgentState, clock: FakeClock, server: FakeServer) -> Runner:
    return Runner(config, state, clock, client=server)  # type: ignore[arg-type]


def on_disk(tls: Path) -> str:
    cert = load_certificates((tls / "www.crt").read_bytes())[0]
    key = serialization.load_pem_private_key((tls / "www.key").read_bytes(), None)
    assert key.public_key() == cert.public_key()
    return fingerprint_sha256(cert)


def test_first_run_deploys_and_reports_then_nothing_to_do(
    tls: Path, state: AgentState, clock: FakeClock, server: FakeServer
) -> None:
    agent = runner(config_for(tls), state, clock, server)
    [outcome] = agent.run_once()
    assert outcome.status == "deployed" and outcome.detail == "not deployed yet"
    assert on_disk(tls) == outcome.fingerprint
    [report] = server.reports
    assert report["status"] == "deployed" and report["files"] == {
        "key": str(tls / "www.key"),
        "fullchain": str(tls / "www.crt"),
    }
    assert [o.status for o in agent.run_once()] == ["unchanged"]
    assert len(server.issued) == 1


def test_the_renewal_window_triggers_a_renewal(
    tls: Path, state: AgentState, clock: FakeClock, server: FakeServer
) -> None:
    agent = runner(config_for(tls), state, clock, server)
    [first] = agent.run_once()
    clock.advance(dt.timedelta(days=55))  # before the last third of 90 days
    assert agent.run_once()[0].status == "unchanged"
    clock.advance(dt.timedelta(days=21))  # past the window's end (day 75)
    [renewed] = agent.run_once()
    assert renewed.status == "deployed" and "local schedule" in renewed.detail
    assert on_disk(tls) == renewed.fingerprint != first.fingerprint


def test_the_server_schedule_wins(tls: Path, state: AgentState, clock: FakeClock, server: FakeServer) -> None:
    agent = runner(config_for(tls), state, clock, server)
    [first] = agent.run_once()
    assert first.fingerprint is not None
    now = clock.now()
    server.windows["www"] = (first.fingerprint, now - dt.timedelta(hours=2), now - dt.timedelta(hours=1))
    [renewed] = agent.run_once()
    assert renewed.status == "deployed" and "server schedule" in renewed.detail


def test_a_failed_reload_rolls_back_reports_and_backs_off(
    tls: Path, state: AgentState, clock: FakeClock, server: FakeServer
) -> None:
    good = runner(config_for(tls), state, clock, server)
    [first] = good.run_once()
    broken = runner(config_for(tls, reload=("false",)), state, clock, server)
    [failed] = broken.run_once(force=True)
    assert failed.status == "rolled_back" and "exited with 1" in failed.detail
    assert on_disk(tls) == first.fingerprint  # the old pair is back
    assert server.reports[-1]["status"] == "rolled_back"
    retry = state.retry("www")
    assert retry.failures == 1 and retry.next_attempt_at == clock.now() + dt.timedelta(minutes=1)
    [waiting] = broken.run_once()
    assert waiting.status == "waiting"
    clock.advance(dt.timedelta(minutes=1))
    [again] = broken.run_once()
    assert again.status == "rolled_back"
    assert state.retry("www").next_attempt_at == clock.now() + dt.timedelta(minutes=2)
    issued = len(server.issued)
    clock.advance(dt.timedelta(minutes=2))
    [fixed] = good.run_once()
    # The certificate issued for the failed attempt is deployed: no second issuance.
    assert fixed.status == "deployed" and fixed.fingerprint == failed.fingerprint
    assert len(server.issued) == issued
    assert state.retry("www").failures == 0


def test_issuing_needs_the_server(tls: Path, state: AgentState, clock: FakeClock, server: FakeServer) -> None:
    agent = runner(config_for(tls), state, clock, server)
    [first] = agent.run_once()
    server.down = True
    [outcome] = agent.run_once(force=True)
    assert outcome.status == "failed" and "cannot reach" in outcome.detail
    assert on_disk(tls) == first.fingerprint
    assert state.retry("www").failures == 1


def test_reports_wait_in_the_outbox_while_the_server_is_down(
    tls: Path, state: AgentState, clock: FakeClock, server: FakeServer, ca: ThrowawayCa
) -> None:
    agent = runner(config_for(tls), state, clock, server)
    agent.run_once()
    material = ca.issue()
    state.save_pending_key("www", material.key)
    state.save_pending_chain("www", [material.certificate, *material.chain])
    server.down = True
    [outcome] = agent.run_once(force=True)  # a pending certificate needs no server
    assert outcome.status == "deployed" and outcome.fingerprint == material.fingerprint
    assert len(list(state.queued_reports())) == 1
    server.down = False
    agent.run_once()
    assert server.reports[-1]["status"] == "deployed"
    assert load_certificates(server.reports[-1]["certificate_pem"].encode())[0] == material.certificate
    assert list(state.queued_reports()) == []


def test_a_certificate_being_deployed_elsewhere_is_skipped(
    tls: Path, state: AgentState, clock: FakeClock, server: FakeServer
) -> None:
    agent = runner(config_for(tls), state, clock, server)
    with state.lock("www"):
        [outcome] = agent.run_once()
    assert outcome.status == "busy"
    assert not (tls / "www.crt").exists()


def test_an_interrupted_deployment_is_verified_on_restart(
    tls: Path, state: AgentState, clock: FakeClock, server: FakeServer, ca: ThrowawayCa
) -> None:
    config = config_for(tls)
    agent = runner(config, state, clock, server)
    agent.run_once()
    store = VersionStore(config.certificates[0], (tls,), clock.now())
    new = ca.issue()
    store.deploy(render_all(config.certificates[0], new), "new")  # then "killed" before the reload
    [outcome] = runner(config, state, clock, server).run_once()
    assert outcome.status == "unchanged"  # the switch was verified: new is now the deployed one
    assert on_disk(tls) == new.fingerprint
    assert server.reports[-1]["detail"] == "completed after an interrupted run"
    assert store.pending() is None


def test_an_interrupted_deployment_that_fails_verification_is_rolled_back(
    tls: Path, state: AgentState, clock: FakeClock, server: FakeServer, ca: ThrowawayCa
) -> None:
    config = config_for(tls)
    [first] = runner(config, state, clock, server).run_once()
    store = VersionStore(config.certificates[0], (tls,), clock.now())
    store.deploy(render_all(config.certificates[0], ca.issue()), "new")
    broken = config_for(tls, reload=("false",))
    runner(broken, state, clock, server).run_once()
    assert on_disk(tls) == first.fingerprint
    assert server.reports[-1]["status"] == "rolled_back"


def test_a_certificate_from_another_issuer_is_replaced(
    tls: Path, state: AgentState, clock: FakeClock, server: FakeServer
) -> None:
    foreign = ThrowawayCa().issue()
    (tls / "www.key").write_bytes(foreign.key_pem())
    (tls / "www.crt").write_bytes(foreign.fullchain_pem)
    config = config_for(tls)
    [outcome] = runner(config, state, clock, server).run_once()
    assert outcome.status == "deployed" and outcome.detail == "not deployed yet"
    store = VersionStore(config.certificates[0], (tls,), clock.now())
    previous = store.leaf(os.readlink(store.previous))
    assert previous == foreign.certificate  # adopted: a rollback would have restored it


def test_a_deployed_certificate_of_another_issuer_is_replaced(
    tls: Path, state: AgentState, clock: FakeClock, server: FakeServer
) -> None:
    config = config_for(tls)
    store = VersionStore(config.certificates[0], (tls,), clock.now())
    store.deploy(render_all(config.certificates[0], ThrowawayCa().issue()), "foreign")
    store.finish()
    [outcome] = runner(config, state, clock, server).run_once()
    assert outcome.status == "deployed" and outcome.detail == "not issued by certfleet"


def test_the_identity_is_renewed_in_the_last_third(
    tls: Path, state: AgentState, clock: FakeClock, server: FakeServer
) -> None:
    before = state.identity_certificate()
    agent = runner(config_for(tls), state, clock, server)
    agent.run_once()
    assert state.identity_certificate().serial_number == before.serial_number
    clock.advance(dt.timedelta(days=21))  # past two thirds of 30 days
    agent.run_once()
    after = state.identity_certificate()
    assert after.serial_number != before.serial_number and server.identity_reloads == 1
    key = serialization.load_pem_private_key(state.identity_file.read_bytes(), None)
    assert key.public_key() == after.public_key()

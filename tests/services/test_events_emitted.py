"""The events services announce with their change, on SQLite and PostgreSQL: ``revoked``,
``discovered-unknown`` and ``rotation-progress`` are written to the outbox in the change's
transaction, once, and not at all when the change is refused."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certfleet.app import Platform
from certfleet.clock import iso
from certfleet.discovery import BadTarget, FileScanOptions, fingerprint
from certfleet.errors import NotFound
from certfleet.lifecycle.campaigns import CampaignRequest, CampaignStatus
from certfleet.lifecycle.notifications import sign
from certfleet.lifecycle.selection import Selection
from certfleet.revocation import AlreadyRevoked
from certfleet.services.discovery import FileScanRequest, parse_trust_bundle
from certfleet.x509 import KeyType, generate_private_key, serial_hex
from tests.conftest import Cli, FakeClock
from tests.discovery.pki import Pki, pem
from tests.lifecycle.fleet import issue
from tests.lifecycle.notifications.receivers import HttpReceiver
from tests.services.snapshot import rows


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    yield server
    server.close()


def _events(platform: Platform, kind: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(subject, team, payload) of every outbox event of ``kind``, oldest first."""
    found = rows(
        platform.database,
        "SELECT subject, team, payload_json FROM notification_events WHERE kind = :k ORDER BY id",
        k=kind,
    )
    return [(subject, team, json.loads(payload)) for subject, team, payload in found]


# -- revoked -----------------------------------------------------------------------------------


def test_a_revocation_announces_itself_once_and_a_refused_one_not_at_all(
    platform: Platform, clock: FakeClock
) -> None:
    serial = issue(platform, "www.a.example.test", team="a").record.serial
    assert _events(platform, "revoked") == []

    platform.revocation.revoke(serial, "keyCompromise", actor="alice")

    ((subject, team, payload),) = _events(platform, "revoked")
    assert (subject, team, payload["event"]) == (serial, "a", "revoked")
    assert payload["certificate"]["serial"] == serial and payload["certificate"]["status"] == "revoked"
    details = payload["details"]
    assert (details["reason"], details["revoked_at"], details["actor"]) == (
        "keyCompromise",
        iso(clock.now()),
        "alice",
    )
    assert details["key_blocked"] is True
    # Refused revocations change nothing, and announce nothing.
    with pytest.raises(AlreadyRevoked):
        platform.revocation.revoke(serial, "superseded", actor="alice")
    with pytest.raises(NotFound):
        platform.revocation.revoke("abcdef0123", "superseded", actor="alice")
    assert [s for s, _, _ in _events(platform, "revoked")] == [serial]


def test_revoking_from_the_cli_announces_it(platform: Platform, cli: Cli) -> None:
    serial = issue(platform, "cli.example.test", team="ops").record.serial
    result = cli("revoke", serial, "--reason", "superseded")
    assert result.exit_code == 0, result.stderr
    ((subject, team, payload),) = _events(platform, "revoked")
    assert (subject, team, payload["details"]["reason"]) == (serial, "ops", "superseded")
    again = cli("revoke", serial, "--reason", "superseded")
    assert again.exit_code == 2 and "already revoked" in again.stderr
    assert len(_events(platform, "revoked")) == 1


def test_revoking_an_intermediate_announces_it_without_a_certificate(platform: Platform) -> None:
    issuing = next(ca for ca in platform.authorities.hierarchy() if ca.role == "intermediate")
    serial = serial_hex(issuing.certificate.serial_number)
    platform.revocation.revoke_serial(serial, "caCompromise", actor="cli")
    ((subject, team, payload),) = _events(platform, "revoked")
    assert (subject, team, payload["certificate"]) == (serial, None, None)
    assert (payload["details"]["reason"], payload["details"]["issuer_ca_id"]) == (
        "caCompromise",
        issuing.parent_id,
    )


def test_a_revocation_reaches_the_teams_webhook_once(platform: Platform, receiver: HttpReceiver) -> None:
    platform.notifications.add_channel(
        type_name="webhook", options={"url": receiver.url}, team="a", actor="test", secret="s3cret"
    )
    serial = issue(platform, "www.a.example.test", team="a").record.serial
    platform.revocation.revoke(serial, "cessationOfOperation", actor="alice")

    platform.notifications.dispatch_once()
    platform.notifications.dispatch_once()

    revoked = [r for r in receiver.requests if r.json()["event"] == "revoked"]
    assert len(revoked) == 1
    body = revoked[0].json()
    assert body["subject"] == serial and body["owner"] == {"team": "a"}
    assert body["details"]["reason"] == "cessationOfOperation"
    assert revoked[0].headers["x-certfleet-signature"] == sign("s3cret", revoked[0].body)


# -- discovered-unknown ------------------------------------------------------------------------


def _scan(platform: Platform, *paths: Path, trust: bytes, team: str | None = "web", days: int = 30) -> None:
    request = FileScanRequest(
        tuple(str(p) for p in paths),
        FileScanOptions(),
        trust=parse_trust_bundle(trust, "t"),
        team=team,
        expiring_days=days,
    )
    platform.discovery.scan_files(request, actor="test")


def test_a_scan_announces_new_and_untrusted_certificates_once(
    platform: Platform, tmp_path: Path, clock: FakeClock
) -> None:
    trusted, unknown = Pki("Trusted", now=clock.now()), Pki("Unknown", now=clock.now())
    known_leaf = trusted.leaf(["known.example.test"])
    stranger = unknown.leaf(["stranger.example.test"])
    ours = issue(platform, "ours.example.test", team="ops").issued.certificate
    (tmp_path / "known.pem").write_bytes(pem(known_leaf.cert, trusted.intermediate.cert))
    (tmp_path / "stranger.pem").write_bytes(pem(stranger.cert))
    (tmp_path / "ours.pem").write_bytes(pem(ours))

    _scan(platform, tmp_path, trust=pem(trusted.root.cert))

    events = {
        payload["certificate"]["fingerprint_sha256"]: (team, payload)
        for _, team, payload in _events(platform, "discovered-unknown")
    }
    # certfleet's own certificate is in the inventory and trusted; the intermediate is no leaf
    assert len(_events(platform, "discovered-unknown")) == 2
    assert set(events) == {fingerprint(known_leaf.cert), fingerprint(stranger.cert)}
    team, payload = events[fingerprint(stranger.cert)]
    assert team == "web" and payload["details"]["reasons"] == ["new", "untrusted-issuer"]
    assert "not trusted" in payload["details"]["issuer_detail"]
    assert [Path(loc["location"]).name for loc in payload["locations"]] == ["stranger.pem"]
    assert events[fingerprint(known_leaf.cert)][1]["details"]["reasons"] == ["new"]

    # A rescan, even one that now finds the stranger's issuer untrusted again, says nothing new.
    clock.advance(dt.timedelta(hours=1))
    _scan(platform, tmp_path, trust=pem(trusted.root.cert))
    assert len(_events(platform, "discovered-unknown")) == 2
    # A scan refused before it ran records nothing.
    (tmp_path / "late.pem").write_bytes(pem(unknown.leaf(["late.example.test"]).cert))
    with pytest.raises(BadTarget):
        _scan(platform, tmp_path, trust=pem(trusted.root.cert), days=-1)
    assert len(_events(platform, "discovered-unknown")) == 2


def test_a_known_certificate_from_an_unknown_issuer_is_announced(
    platform: Platform, tmp_path: Path, clock: FakeClock
) -> None:
    unknown = Pki("Elsewhere", now=clock.now())
    leaf = unknown.leaf(["elsewhere.example.test"])
    (tmp_path / "leaf.pem").write_bytes(pem(leaf.cert, unknown.intermediate.cert))
    # First seen while its root was trusted: new, announced as such.
    _scan(platform, tmp_path, trust=pem(unknown.root.cert), team=None)
    assert [p["details"]["reasons"] for _, _, p in _events(platform, "discovered-unknown")] == [["new"]]
    # Its issuer unknown to a later scan: the leaf, already announced, is not announced again;
    # the intermediate (never announced: not a leaf) now chains to no trusted root.
    other_root = pem(Pki("Other", now=clock.now()).root.cert)
    _scan(platform, tmp_path, trust=other_root, team=None)
    _scan(platform, tmp_path, trust=other_root, team=None)
    events = _events(platform, "discovered-unknown")
    assert [(p["certificate"]["fingerprint_sha256"], p["details"]["reasons"]) for _, _, p in events] == [
        (fingerprint(leaf.cert), ["new"]),
        (fingerprint(unknown.intermediate.cert), ["untrusted-issuer"]),
    ]


# -- rotation-progress -------------------------------------------------------------------------


def _rotation_steps(platform: Platform) -> list[tuple[str | None, dict[str, Any]]]:
    return [(team, payload["details"]) for _, team, payload in _events(platform, "rotation-progress")]


def test_a_campaign_announces_each_milestone_once(platform: Platform, tmp_path: Path) -> None:
    rsa_key = generate_private_key(KeyType.RSA_2048)
    old = [issue(platform, f"rsa{i}.example.test", key=rsa_key, team="web").record for i in range(4)]
    issue(platform, "ec.example.test", team="web")
    request = CampaignRequest(
        Selection.parse("key=rsa-2048,team=web"),
        to_key_type=KeyType.EC_P256,
        generate_dir=tmp_path / "keys",
        revoke_old_after=dt.timedelta(0),
    )
    campaign = platform.rotation.create(request, actor="test")
    assert [(t, d["step"]) for t, d in _rotation_steps(platform)] == [("web", "created")]

    report = platform.rotation.run(campaign.id)

    assert report.campaign.status is CampaignStatus.COMPLETED
    steps = _rotation_steps(platform)
    assert [d["step"] for _, d in steps] == [
        "created",
        *(f"{m}:{p}%" for m in ("reissued", "old_revoked") for p in (25, 50, 75, 100)),
        "completed",
    ]
    assert {t for t, _ in steps} == {"web"}
    half = next(d for _, d in steps if d["step"] == "reissued:50%")
    assert (half["milestone"], half["percent"], half["summary"]) == ("reissued", 50, "2 of 4 reissued")
    assert half["campaign"]["id"] == campaign.id and half["progress"]["reissued"] == 4
    # The old certificates were revoked through the revocation service: one event each.
    assert sorted(s for s, _, _ in _events(platform, "revoked")) == sorted(r.serial for r in old)
    # Observing again announces nothing twice.
    platform.rotation.report(campaign.id, refresh=True)
    platform.rotation.run(campaign.id)
    assert len(_rotation_steps(platform)) == len(steps)


def test_a_campaign_refused_announces_nothing(platform: Platform) -> None:
    issue(platform, "ec.example.test")
    with pytest.raises(NotFound):
        platform.rotation.create(CampaignRequest(Selection.parse("key=rsa-2048")), actor="test")
    assert _rotation_steps(platform) == []


def test_small_campaigns_announce_each_count_once(platform: Platform) -> None:
    # One certificate: every quarter falls on 1 of 1, announced once as 100 %.
    issue(platform, "solo.example.test", key_type=KeyType.RSA_2048)
    campaign = platform.rotation.create(CampaignRequest(Selection.parse("key=rsa-2048")), actor="test")
    platform.rotation.run(campaign.id)
    steps = _rotation_steps(platform)
    assert {t for t, _ in steps} == {None}, "no team selected: channels of every team get it"
    assert [d["step"] for _, d in steps] == ["created", "reissued:100%", "completed"]

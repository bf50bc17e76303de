"""SCEP across two serving workers (two platforms on one data directory and database): a
worker keeps the challenges it has read, and the use is still spent exactly once, in
issuance's transaction; a replayed transactionID answers with its first certificate on
either worker, even when a new request would now be refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certfleet.app import Platform
from tests.conftest import FakeClock, make_platform
from tests.protocols.scep.client import (
    Message,
    csr,
    envelope_aes,
    ra_certificate,
    read_cert_rep,
    rsa_key,
    self_signed,
)
from tests.services.snapshot import rows

SUCCESS, FAILURE, BAD_REQUEST = "0", "2", "2"


@pytest.fixture
def other(data_dir: Path, db_url: str, clock: FakeClock, platform: Platform) -> Iterator[Platform]:
    """A second platform on the same data directory and database: another serve worker."""
    second = make_platform(data_dir, db_url, clock)
    yield second
    second.close()


def _request(platform: Platform, password: str, cn: str) -> tuple[Message, x509.Certificate]:
    ra = ra_certificate(platform.scep_server.ca_certificates())
    key = rsa_key()
    request = csr(key, cn, challenge=password).public_bytes(serialization.Encoding.DER)
    return Message("19", envelope_aes(request, ra), self_signed(key), key), ra


def _send(platform: Platform, message: Message, ra: x509.Certificate):
    return read_cert_rep(platform.scep_server.pki_operation(message.build()), ra)


def _issued(platform: Platform) -> list[tuple[str]]:
    return rows(platform.database, "SELECT common_name FROM certificates WHERE source = 'scep' ORDER BY 1")


def test_a_worker_that_read_a_challenge_before_another_spent_its_last_use_is_refused(
    platform: Platform, other: Platform
) -> None:
    password = platform.scep.create_challenge("ops", actor="test", uses=2).password
    first = _send(platform, *_request(platform, password, "a.example.test"))  # reads it: 2 left
    second = _send(other, *_request(other, password, "b.example.test"))  # the last use
    third = _send(platform, *_request(platform, password, "c.example.test"))
    assert (first.status, second.status) == (SUCCESS, SUCCESS)
    assert (third.status, third.fail_info) == (FAILURE, BAD_REQUEST)
    assert _issued(platform) == [("a.example.test",), ("b.example.test",)]
    assert rows(platform.database, "SELECT uses_left FROM scep_challenges") == [(0,)]
    assert rows(platform.database, "SELECT count(*) FROM scep_transactions") == [(2,)]


def test_a_replay_answers_with_its_first_certificate_when_a_new_request_would_be_refused(
    platform: Platform, other: Platform
) -> None:
    password = platform.scep.create_challenge("ops", actor="test", uses=3).password
    message, ra = _request(platform, password, "kept.example.test")
    first = _send(platform, message, ra)
    assert first.status == SUCCESS
    key = message.signer_key
    (issued,) = first.certificates(key, message.signer)
    # Since then the policy refuses the name: a new request for it would be badRequest.
    platform.policy.apply(
        "rules:\n  - name: no-kept\n    team: ops\n    denied_names: ['kept.example.test']\n",
        source="p.yaml",
        actor="alice",
    )
    refused = _send(other, *_request(other, password, "kept.example.test"))
    assert (refused.status, refused.fail_info) == (FAILURE, BAD_REQUEST)
    for worker in (platform, other):
        message.nonce = os.urandom(16)  # the client retrying after a lost reply
        again = _send(worker, message, ra)
        assert again.status == SUCCESS and again.certificates(key, message.signer) == [issued]
    assert _issued(platform) == [("kept.example.test",)]
    assert rows(platform.database, "SELECT uses_left FROM scep_challenges WHERE team = 'ops'") == [(2,)]

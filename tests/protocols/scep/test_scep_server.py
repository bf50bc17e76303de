"""The SCEP server end to end in process (protocol, service, store on SQLite and PostgreSQL):
every message type, every failInfo of RFC 8894 section 3.2.1.4.5, replays, manual approval,
renewal, and bad input that records nothing."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from certfleet.app import Platform
from certfleet.protocols.scep import MalformedMessage
from tests.conftest import FakeClock
from tests.protocols.scep.client import (
    Message,
    csr,
    envelope_aes,
    envelope_des3,
    issuer_and_serial,
    ra_certificate,
    read_cert_rep,
    rsa_key,
    self_signed,
)
from tests.services.snapshot import audit_actions, rows

SUCCESS, FAILURE, PENDING = "0", "2", "3"
BAD_ALG, BAD_MESSAGE_CHECK, BAD_REQUEST, BAD_TIME, BAD_CERT_ID = "0", "1", "2", "3", "4"


@dataclass
class Device:
    key: rsa.RSAPrivateKey
    signer: x509.Certificate

    @classmethod
    def new(cls) -> Device:
        key = rsa_key()
        return cls(key, self_signed(key))


@pytest.fixture
def ra(platform: Platform) -> x509.Certificate:
    return ra_certificate(platform.scep_server.ca_certificates())


def _challenge(platform: Platform, **options: object) -> str:
    return platform.scep.create_challenge("ops", actor="test", **options).password  # type: ignore[arg-type]


def _pkcs_req(
    ra: x509.Certificate, device: Device, password: str | None, cn: str, **fields: object
) -> Message:
    request = csr(device.key, cn, challenge=password).public_bytes(serialization.Encoding.DER)
    return Message("19", envelope_aes(request, ra), device.signer, device.key, **fields)  # type: ignore[arg-type]


def _send(platform: Platform, ra: x509.Certificate, message: bytes):
    return read_cert_rep(platform.scep_server.pki_operation(message), ra)


def _scep_certificates(platform: Platform) -> list[tuple[str, str | None]]:
    return rows(platform.database, "SELECT source, team FROM certificates WHERE source = 'scep'")


def test_get_ca_cert_returns_the_ra_and_the_ca_and_the_ra_may_sign_and_decrypt(platform: Platform) -> None:
    certs = pkcs7.load_der_pkcs7_certificates(platform.scep_server.ca_certificates())
    ra = ra_certificate(platform.scep_server.ca_certificates())
    issuing = platform.authorities.issuing_authority().issuer.certificate
    assert issuing in certs and platform.authorities.root().certificate in certs and len(certs) == 3
    ra.verify_directly_issued_by(issuing)
    usage = ra.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    with pytest.raises(x509.ExtensionNotFound):  # OpenSSL's S/MIME purpose check refuses any other EKU
        ra.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    key_file = platform.settings.data_dir.keys / "scep-ra.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()


def test_capabilities_advertise_aes_sha256_post_and_renewal(platform: Platform) -> None:
    caps = platform.scep_server.capabilities().decode().split()
    assert {
        "POSTPKIOperation",
        "SHA-256",
        "SHA-512",
        "AES",
        "SCEPStandard",
        "Renewal",
        "GetNextCACert",
    } <= set(caps)


def test_pkcs_req_issues_to_the_challenge_team_and_a_replay_gets_the_same_certificate(
    platform: Platform, ra: x509.Certificate
) -> None:
    device = Device.new()
    message = _pkcs_req(ra, device, _challenge(platform), "dev1.example.test")
    reply = _send(platform, ra, message.build())
    assert (reply.status, reply.fail_info) == (SUCCESS, None)
    assert reply.transaction_id == message.transaction_id and reply.recipient_nonce == message.nonce
    (issued,) = reply.certificates(device.key, device.signer)
    assert issued.public_key() == device.key.public_key()
    assert issued.subject.rfc4514_string() == "CN=dev1.example.test"
    assert _scep_certificates(platform) == [("scep", "ops")]

    message.nonce = b"another nonce!!!"  # a client retrying after a lost reply
    again = _send(platform, ra, message.build())
    assert again.status == SUCCESS
    assert again.certificates(device.key, device.signer) == [issued]
    assert len(_scep_certificates(platform)) == 1


def test_a_one_time_challenge_enrols_once(platform: Platform, ra: x509.Certificate) -> None:
    password = _challenge(platform)
    first = _send(platform, ra, _pkcs_req(ra, Device.new(), password, "a.example.test").build())
    second = _send(platform, ra, _pkcs_req(ra, Device.new(), password, "b.example.test").build())
    assert (first.status, second.status, second.fail_info) == (SUCCESS, FAILURE, BAD_REQUEST)
    assert len(_scep_certificates(platform)) == 1


def test_des3_requests_from_older_clients_are_read(platform: Platform, ra: x509.Certificate) -> None:
    device = Device.new()
    request = csr(device.key, "old.example.test", challenge=_challenge(platform))
    envelope = envelope_des3(request.public_bytes(serialization.Encoding.DER), ra)
    reply = _send(platform, ra, Message("19", envelope, device.signer, device.key, digest="sha1").build())
    assert reply.status == SUCCESS


@pytest.mark.parametrize("password", ["nope", "0123456789ab-" + "0" * 32, None])
def test_an_unknown_challenge_is_bad_request_and_records_nothing(
    platform: Platform, ra: x509.Certificate, password: str | None
) -> None:
    before = audit_actions(platform.database)
    reply = _send(platform, ra, _pkcs_req(ra, Device.new(), password, "dev.example.test").build())
    assert (reply.status, reply.fail_info) == (FAILURE, BAD_REQUEST)
    assert rows(platform.database, "SELECT count(*) FROM scep_transactions") == [(0,)]
    assert _scep_certificates(platform) == []
    assert audit_actions(platform.database) == before


def test_an_expired_challenge_is_bad_request(
    platform: Platform, ra: x509.Certificate, clock: FakeClock
) -> None:
    password = _challenge(platform, ttl=dt.timedelta(hours=1))
    clock.advance(dt.timedelta(hours=2))
    reply = _send(platform, ra, _pkcs_req(ra, Device.new(), password, "dev.example.test").build())
    assert (reply.status, reply.fail_info) == (FAILURE, BAD_REQUEST)
    assert _scep_certificates(platform) == []


def test_names_the_challenge_does_not_allow_are_bad_request_and_keep_the_use(
    platform: Platform, ra: x509.Certificate
) -> None:
    minted = platform.scep.create_challenge("ops", actor="test", names=["*.lab.example.test"])
    before = audit_actions(platform.database)
    refused = _send(platform, ra, _pkcs_req(ra, Device.new(), minted.password, "www.example.test").build())
    assert (refused.status, refused.fail_info) == (FAILURE, BAD_REQUEST)
    assert rows(platform.database, "SELECT uses_left FROM scep_challenges") == [(1,)]
    assert _scep_certificates(platform) == [] and audit_actions(platform.database) == before
    allowed = _send(platform, ra, _pkcs_req(ra, Device.new(), minted.password, "r1.lab.example.test").build())
    assert allowed.status == SUCCESS


def test_scep_obeys_the_same_policy_rules_as_rest_and_acme(platform: Platform, ra: x509.Certificate) -> None:
    platform.policy.apply(
        "rules:\n  - name: ops-names\n    team: ops\n    denied_names: ['admin.example.test']\n",
        source="p.yaml",
        actor="alice",
    )
    password = _challenge(platform)
    refused = _send(platform, ra, _pkcs_req(ra, Device.new(), password, "admin.example.test").build())
    assert (refused.status, refused.fail_info) == (FAILURE, BAD_REQUEST)
    assert _scep_certificates(platform) == []
    assert rows(platform.database, "SELECT count(*) FROM scep_transactions") == [(0,)]
    assert rows(platform.database, "SELECT uses_left FROM scep_challenges") == [(1,)]  # given back


def test_a_bad_signature_is_bad_message_check(platform: Platform, ra: x509.Certificate) -> None:
    message = _pkcs_req(ra, Device.new(), _challenge(platform), "dev.example.test")
    reply = _send(platform, ra, message.build(tamper=True))
    assert (reply.status, reply.fail_info) == (FAILURE, BAD_MESSAGE_CHECK)
    assert _scep_certificates(platform) == []


def test_a_request_signed_by_another_key_than_it_asks_for_is_bad_message_check(
    platform: Platform, ra: x509.Certificate
) -> None:
    device, other = Device.new(), Device.new()
    request = csr(device.key, "dev.example.test", challenge=_challenge(platform))
    envelope = envelope_aes(request.public_bytes(serialization.Encoding.DER), ra)
    reply = _send(platform, ra, Message("19", envelope, other.signer, other.key).build())
    assert (reply.status, reply.fail_info) == (FAILURE, BAD_MESSAGE_CHECK)


def test_an_unsupported_digest_is_bad_alg(platform: Platform, ra: x509.Certificate) -> None:
    message = _pkcs_req(ra, Device.new(), _challenge(platform), "dev.example.test", digest="sha224")
    reply = _send(platform, ra, message.build())
    assert (reply.status, reply.fail_info) == (FAILURE, BAD_ALG)


def test_a_signing_time_far_from_now_is_bad_time(
    platform: Platform, ra: x509.Certificate, clock: FakeClock
) -> None:
    stale = clock.now() - dt.timedelta(days=3)
    message = _pkcs_req(ra, Device.new(), _challenge(platform), "dev.example.test", signing_time=stale)
    reply = _send(platform, ra, message.build())
    assert (reply.status, reply.fail_info) == (FAILURE, BAD_TIME)
    assert _scep_certificates(platform) == []


def test_a_request_encrypted_to_another_certificate_is_bad_request(
    platform: Platform, ra: x509.Certificate
) -> None:
    device = Device.new()
    stranger = self_signed(rsa_key(), "another RA")
    request = csr(device.key, "dev.example.test", challenge=_challenge(platform))
    envelope = envelope_aes(request.public_bytes(serialization.Encoding.DER), stranger)
    before = audit_actions(platform.database)
    reply = _send(platform, ra, Message("19", envelope, device.signer, device.key).build())
    assert (reply.status, reply.fail_info) == (FAILURE, BAD_REQUEST)
    assert rows(platform.database, "SELECT count(*) FROM scep_transactions") == [(0,)]
    assert audit_actions(platform.database) == before


def test_poll_and_get_cert_for_unknown_things_are_bad_cert_id(
    platform: Platform, ra: x509.Certificate
) -> None:
    device = Device.new()
    poll = _send(
        platform, ra, Message("20", envelope_aes(b"\x30\x00", ra), device.signer, device.key).build()
    )
    assert (poll.status, poll.fail_info) == (FAILURE, BAD_CERT_ID)
    envelope = envelope_aes(issuer_and_serial(device.signer), ra)
    get_cert = _send(platform, ra, Message("21", envelope, device.signer, device.key).build())
    assert (get_cert.status, get_cert.fail_info) == (FAILURE, BAD_CERT_ID)


@pytest.mark.parametrize("garbage", [b"", b"\x30\x03\x02\x01", b"not a pkcs7 at all"])
def test_garbage_or_truncated_pkcs7_is_malformed_and_records_nothing(
    platform: Platform, garbage: bytes
) -> None:
    before = audit_actions(platform.database)
    with pytest.raises(MalformedMessage):
        platform.scep_server.pki_operation(garbage)
    assert rows(platform.database, "SELECT count(*) FROM scep_transactions") == [(0,)]
    assert audit_actions(platform.database) == before


def test_a_truncated_real_message_is_malformed(platform: Platform, ra: x509.Certificate) -> None:
    message = _pkcs_req(ra, Device.new(), _challenge(platform), "dev.example.test").build()
    with pytest.raises(MalformedMessage):
        platform.scep_server.pki_operation(message[: len(message) // 2])


def test_manual_approval_holds_the_request_pending_until_approved(
    platform: Platform, ra: x509.Certificate
) -> None:
    device = Device.new()
    message = _pkcs_req(ra, device, _challenge(platform, manual_approval=True), "held.example.test")
    assert _send(platform, ra, message.build()).status == PENDING
    poll = Message(
        "20", envelope_aes(b"\x30\x00", ra), device.signer, device.key, transaction_id=message.transaction_id
    )
    assert _send(platform, ra, poll.build()).status == PENDING
    assert [t.transaction_id for t in platform.scep.pending()] == [message.transaction_id]
    assert _scep_certificates(platform) == []

    platform.scep.approve(message.transaction_id, actor="alice")
    poll.nonce = b"a later poll....."
    reply = _send(platform, ra, poll.build())
    assert reply.status == SUCCESS
    (issued,) = reply.certificates(device.key, device.signer)
    assert issued.public_key() == device.key.public_key()
    assert _scep_certificates(platform) == [("scep", "ops")]


def test_renewal_signed_by_the_current_certificate_keeps_team_and_names(
    platform: Platform, ra: x509.Certificate
) -> None:
    device = Device.new()
    first = _send(platform, ra, _pkcs_req(ra, device, _challenge(platform), "dev.example.test").build())
    (current,) = first.certificates(device.key, device.signer)
    new_key = rsa_key()
    request = csr(new_key, "dev.example.test").public_bytes(serialization.Encoding.DER)
    renewal = Message("17", envelope_aes(request, ra), current, device.key)
    reply = _send(platform, ra, renewal.build())
    assert reply.status == SUCCESS
    (renewed,) = reply.certificates(device.key, current)
    assert renewed.public_key() == new_key.public_key() and renewed.subject == current.subject
    assert _scep_certificates(platform) == [("scep", "ops"), ("scep", "ops")]

    other_names = csr(new_key, "else.example.test").public_bytes(serialization.Encoding.DER)
    widened = _send(platform, ra, Message("17", envelope_aes(other_names, ra), current, device.key).build())
    assert (widened.status, widened.fail_info) == (FAILURE, BAD_REQUEST)


def test_renewal_signed_by_a_certificate_this_ca_never_issued_is_bad_cert_id(
    platform: Platform, ra: x509.Certificate
) -> None:
    device = Device.new()
    request = csr(device.key, "dev.example.test").public_bytes(serialization.Encoding.DER)
    reply = _send(platform, ra, Message("17", envelope_aes(request, ra), device.signer, device.key).build())
    assert (reply.status, reply.fail_info) == (FAILURE, BAD_CERT_ID)
    assert _scep_certificates(platform) == []


def test_get_cert_and_get_crl_answer_for_an_issued_certificate(
    platform: Platform, ra: x509.Certificate
) -> None:
    device = Device.new()
    first = _send(platform, ra, _pkcs_req(ra, device, _challenge(platform), "dev.example.test").build())
    (issued,) = first.certificates(device.key, device.signer)
    envelope = envelope_aes(issuer_and_serial(issued), ra)
    got = _send(platform, ra, Message("21", envelope, device.signer, device.key).build())
    assert got.certificates(device.key, device.signer) == [issued]
    crl_reply = _send(platform, ra, Message("22", envelope, device.signer, device.key).build())
    assert crl_reply.status == SUCCESS
    from asn1crypto import cms

    signed = cms.ContentInfo.load(crl_reply.content(device.key, device.signer))["content"]
    crl = x509.load_der_x509_crl(signed["crls"][0].chosen.dump())
    assert crl.issuer == issued.issuer


def test_get_next_ca_cert_is_signed_by_the_ra(platform: Platform, ra: x509.Certificate) -> None:
    from asn1crypto import cms

    signed = cms.ContentInfo.load(platform.scep_server.next_ca_certificates())["content"]
    inner = bytes(signed["encap_content_info"]["content"].native)
    assert ra in pkcs7.load_der_pkcs7_certificates(inner)


def test_renewal_with_the_enrolment_key_and_transaction_id_is_a_new_transaction_once(
    platform: Platform, ra: x509.Certificate
) -> None:
    """scepclient derives the transactionID from the key: renewing with the same key repeats
    the enrolment's ID, which must still renew (once), not replay the enrolment."""
    device = Device.new()
    enrol = _pkcs_req(ra, device, _challenge(platform), "dev.example.test")
    (current,) = _send(platform, ra, enrol.build()).certificates(device.key, device.signer)
    request = csr(device.key, "dev.example.test").public_bytes(serialization.Encoding.DER)
    renewal = Message(
        "17", envelope_aes(request, ra), current, device.key, transaction_id=enrol.transaction_id
    )
    (renewed,) = _send(platform, ra, renewal.build()).certificates(device.key, current)
    assert renewed.serial_number != current.serial_number
    renewal.nonce = b"retried renewal."
    (again,) = _send(platform, ra, renewal.build()).certificates(device.key, current)
    assert again == renewed
    assert len(_scep_certificates(platform)) == 2


def test_a_pkcs_req_signed_by_the_current_certificate_renews_as_certmonger_sends_it(
    platform: Platform, ra: x509.Certificate
) -> None:
    device = Device.new()
    enrol = _pkcs_req(ra, device, _challenge(platform), "dev.example.test")
    (current,) = _send(platform, ra, enrol.build()).certificates(device.key, device.signer)
    new_key = rsa_key()  # getcert rekey: a new key, the request signed with the old one
    request = csr(new_key, "dev.example.test").public_bytes(serialization.Encoding.DER)
    rekey = Message("19", envelope_aes(request, ra), current, device.key, transaction_id=enrol.transaction_id)
    reply = _send(platform, ra, rekey.build())
    assert reply.status == SUCCESS
    (renewed,) = reply.certificates(device.key, current)
    assert renewed.public_key() == new_key.public_key()
    assert _scep_certificates(platform) == [("scep", "ops"), ("scep", "ops")]


def _at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` on ``count`` threads released together (request threads of a worker)."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        start.wait()
        results[index] = work(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_one_message_sent_twice_at_once_issues_one_certificate_and_a_re_poll_returns_it(
    platform: Platform, ra: x509.Certificate
) -> None:
    device = Device.new()
    message = _pkcs_req(ra, device, _challenge(platform, uses=5), "twice.example.test")
    der = message.build()
    replies = _at_once(2, lambda _: _send(platform, ra, der))
    # The second answers with the first's certificate, or PENDING while the first signs.
    assert sorted(r.status for r in replies) in ([SUCCESS, SUCCESS], [SUCCESS, PENDING])
    issued = {tuple(r.certificates(device.key, device.signer)) for r in replies if r.status == SUCCESS}
    assert len(issued) == 1
    assert len(_scep_certificates(platform)) == 1
    again = _send(platform, ra, message.build())
    assert again.status == SUCCESS and tuple(again.certificates(device.key, device.signer)) in issued
    assert rows(platform.database, "SELECT uses_left FROM scep_challenges") == [(4,)]


def test_a_challenges_uses_taken_by_more_requests_at_once_issue_exactly_that_many(
    platform: Platform, ra: x509.Certificate
) -> None:
    password = _challenge(platform, uses=2)
    messages = [_pkcs_req(ra, Device.new(), password, f"d{i}.example.test").build() for i in range(4)]
    replies = _at_once(4, lambda i: _send(platform, ra, messages[i]))
    assert sorted((r.status, r.fail_info) for r in replies) == [
        (SUCCESS, None),
        (SUCCESS, None),
        (FAILURE, BAD_REQUEST),
        (FAILURE, BAD_REQUEST),
    ]
    assert len(_scep_certificates(platform)) == 2
    assert rows(platform.database, "SELECT uses_left FROM scep_challenges") == [(0,)]
    assert rows(platform.database, "SELECT count(*) FROM scep_transactions") == [(2,)]

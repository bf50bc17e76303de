"""The OCSP responder's answers (RFC 6960, RFC 5019), over a hand-written fake store."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certfleet.ca import CaCertificate
from certfleet.revocation import (
    IssuerIndex,
    OcspResponder,
    ResponseSigner,
    Revocation,
    RevocationReason,
    RevocationSettings,
    SerialStatus,
    build_responder_certificate,
)
from tests.conftest import FakeClock
from tests.revocation.conftest import FakeStore, Pki

SETTINGS = RevocationSettings()


@pytest.fixture
def responder(pki: Pki, store: FakeStore, clock: FakeClock) -> OcspResponder[CaCertificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_responder_certificate(
        ca=pki.issuing,
        ca_key=pki.issuing_key,
        public_key=key.public_key(),
        serial_number=99,
        now=clock.now(),
        lifetime=SETTINGS.responder_lifetime,
    )
    signers = {
        pki.issuing.id: ResponseSigner(pki.issuing.id, cert, key, delegated=True),
        pki.root.id: ResponseSigner(pki.root.id, pki.root.certificate, pki.root_key, delegated=False),
    }
    index = IssuerIndex([pki.root, pki.issuing])
    return OcspResponder(store, lambda _refresh: index, lambda ca: signers[ca.id], SETTINGS, clock)


def _request(issuer: x509.Certificate, *serials: int, nonce: bytes | None = None) -> bytes:
    key_hash = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    name_hash = hashes.Hash(hashes.SHA1())
    name_hash.update(issuer.subject.public_bytes())
    requests = []
    for serial in serials:
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            name_hash.copy().finalize(), key_hash, serial, hashes.SHA1()
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        requests.append(builder.build().public_bytes(Encoding.DER))
    if len(requests) == 1:
        return requests[0]
    return _merge(requests)


def _merge(requests: list[bytes]) -> bytes:
    """Join single-certificate requests into one requestList, as openssl -cert a -cert b does."""
    from certfleet.x509 import der as _der

    parts = [_der.elements(_der.single(_der.single(r).content).content) for r in requests]
    request_list = b"".join(_der.elements(p[0].content)[0].raw for p in parts)
    tail = b"".join(e.raw for e in parts[0][1:])
    tbs = _der.encode(_der.SEQUENCE, _der.encode(_der.SEQUENCE, request_list) + tail)
    return _der.encode(_der.SEQUENCE, tbs)


def _status(der: bytes) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(der)


def test_an_issued_serial_is_good_and_then_served_from_the_cache(
    responder: OcspResponder[CaCertificate], store: FakeStore, pki: Pki, now: dt.datetime
) -> None:
    store.issue(pki.issuing.id, 0x51, now)
    first = responder.respond(_request(pki.issuing.certificate, 0x51))
    assert _status(first.der).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert first.this_update == now and first.next_update == now + SETTINGS.ocsp_validity
    assert first.refresh_at == now + SETTINGS.ocsp_validity / 3
    assert store.saves == 1
    again = responder.respond(_request(pki.issuing.certificate, 0x51))
    assert again.der == first.der and store.saves == 1


def test_an_answer_is_given_even_when_a_writer_keeps_it_out_of_the_shared_cache(
    responder: OcspResponder[CaCertificate], store: FakeStore, pki: Pki, now: dt.datetime
) -> None:
    # Issuance or a CRL build holds the database: the relying party does not wait for it.
    store.issue(pki.issuing.id, 0x5A, now)
    store.writer_busy = True
    first = responder.respond(_request(pki.issuing.certificate, 0x5A))
    assert _status(first.der).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert store.saves == 0 and not store.responses
    # This process still remembers it: no second signature while nothing changed.
    again = responder.respond(_request(pki.issuing.certificate, 0x5A))
    assert again.der == first.der


def test_a_cached_good_answer_is_never_served_after_a_revocation(
    responder: OcspResponder[CaCertificate], store: FakeStore, pki: Pki, now: dt.datetime
) -> None:
    store.issue(pki.issuing.id, 0x52, now)
    responder.respond(_request(pki.issuing.certificate, 0x52))
    store.revoke(
        Revocation("52", pki.issuing.id, now, RevocationReason.KEY_COMPROMISE, now + dt.timedelta(days=9))
    )
    response = _status(responder.respond(_request(pki.issuing.certificate, 0x52)).der)
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.key_compromise
    assert response.revocation_time_utc == now


def test_the_cache_is_refreshed_after_a_third_of_the_validity(
    responder: OcspResponder[CaCertificate], store: FakeStore, pki: Pki, clock: FakeClock
) -> None:
    store.issue(pki.issuing.id, 0x53, clock.now())
    first = responder.respond(_request(pki.issuing.certificate, 0x53))
    clock.advance(SETTINGS.ocsp_validity / 3 - dt.timedelta(seconds=1))
    assert responder.respond(_request(pki.issuing.certificate, 0x53)).der == first.der
    clock.advance(dt.timedelta(seconds=1))
    renewed = responder.respond(_request(pki.issuing.certificate, 0x53))
    assert renewed.der != first.der and renewed.this_update == clock.now().replace(microsecond=0)


@pytest.mark.parametrize("state", [None, "reserved"])
def test_a_serial_never_issued_is_unknown_and_not_cached(
    responder: OcspResponder[CaCertificate], store: FakeStore, pki: Pki, now: dt.datetime, state: str | None
) -> None:
    if state is not None:
        store.issue(pki.issuing.id, 0x54, now, state=state)
    response = _status(responder.respond(_request(pki.issuing.certificate, 0x54)).der)
    # RFC 6960 2.2: never "good" for a serial we did not issue; certfleet answers "unknown".
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    assert store.saves == 0


def test_the_root_answers_for_its_intermediate(responder: OcspResponder[CaCertificate], pki: Pki) -> None:
    response = _status(
        responder.respond(_request(pki.root.certificate, pki.issuing.certificate.serial_number)).der
    )
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert (
        response.responder_key_hash
        == pki.root.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    )


def test_an_issuer_we_do_not_serve_is_unauthorized(
    responder: OcspResponder[CaCertificate], other_pki: Pki
) -> None:
    response = _status(responder.respond(_request(other_pki.issuing.certificate, 5)).der)
    assert response.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_mixing_issuers_in_one_request_is_unauthorized(
    responder: OcspResponder[CaCertificate], store: FakeStore, pki: Pki, other_pki: Pki, now: dt.datetime
) -> None:
    store.issue(pki.issuing.id, 0x55, now)
    mixed = _merge([_request(pki.issuing.certificate, 0x55), _request(other_pki.issuing.certificate, 0x55)])
    assert _status(responder.respond(mixed).der).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    two_of_ours = _merge([_request(pki.issuing.certificate, 0x55), _request(pki.root.certificate, 0x55)])
    assert _status(responder.respond(two_of_ours).der).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage garbage", b"\x30\x03\x02\x01", b"\x30\x82\xff\xff" + b"\x00" * 10],
)
def test_malformed_requests_get_malformed_request(
    responder: OcspResponder[CaCertificate], data: bytes
) -> None:
    published = responder.respond(data)
    assert _status(published.der).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert published.this_update is None  # nothing for an HTTP cache to keep


def test_a_truncated_request_gets_malformed_request(
    responder: OcspResponder[CaCertificate], pki: Pki
) -> None:
    der = _request(pki.issuing.certificate, 0x56)
    for cut in (1, len(der) // 2, len(der) - 1):
        status = _status(responder.respond(der[:cut]).der).response_status
        assert status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_a_nonce_is_echoed_and_such_a_response_is_not_shared(
    responder: OcspResponder[CaCertificate], store: FakeStore, pki: Pki, now: dt.datetime
) -> None:
    store.issue(pki.issuing.id, 0x57, now)
    published = responder.respond(_request(pki.issuing.certificate, 0x57, nonce=b"\x42" * 20))
    response = _status(published.der)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"\x42" * 20
    assert not published.shared_cache
    assert store.saves == 0  # one client's nonce: never cached
    refused = responder.respond(_request(pki.issuing.certificate, 0x57, nonce=b"\x42" * 33))
    assert _status(refused.der).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_several_certificates_in_one_request_are_all_answered(
    responder: OcspResponder[CaCertificate], store: FakeStore, pki: Pki, now: dt.datetime
) -> None:
    store.issue(pki.issuing.id, 0x61, now)
    store.issue(pki.issuing.id, 0x62, now)
    store.revoke(
        Revocation("62", pki.issuing.id, now, RevocationReason.SUPERSEDED, now + dt.timedelta(days=9))
    )
    response = _status(responder.respond(_request(pki.issuing.certificate, 0x61, 0x62, 0x63)).der)
    answers = {r.serial_number: r.certificate_status for r in response.responses}
    assert answers == {
        0x61: ocsp.OCSPCertStatus.GOOD,
        0x62: ocsp.OCSPCertStatus.REVOKED,
        0x63: ocsp.OCSPCertStatus.UNKNOWN,
    }


def test_a_new_certificate_is_signed_on_its_first_request_and_then_only_refreshed(
    responder: OcspResponder[CaCertificate], store: FakeStore, pki: Pki, clock: FakeClock
) -> None:
    # Given three newly issued certificates, maintenance signs nothing for them (issuance
    # at full speed must not pay for answers nobody asked for)
    for serial in (0x71, 0x72, 0x73):
        store.issue(pki.issuing.id, serial, clock.now())
    assert responder.presign(pki.issuing, clock.now()) == 0
    assert store.saves == 0
    # When one of them is asked for, its good answer is signed once and cached
    first = responder.respond(_request(pki.issuing.certificate, 0x72))
    assert _status(first.der).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert store.saves == 1 and first.this_update == clock.now().replace(microsecond=0)
    assert responder.presign(pki.issuing, clock.now()) == 0
    # Then only that answer is kept fresh once a third of its validity has passed
    clock.advance(SETTINGS.ocsp_validity / 3 + dt.timedelta(seconds=1))
    assert responder.presign(pki.issuing, clock.now()) == 1
    assert set(store.responses) == {(pki.issuing.id, "72", "sha1")}


class CountingSigner:
    """The responder's signer callable, counting how often a response is signed."""

    def __init__(self, signers: dict[str, ResponseSigner]) -> None:
        self.signers = signers
        self.calls = 0

    def __call__(self, ca: CaCertificate) -> ResponseSigner:
        self.calls += 1
        return self.signers[ca.id]


@pytest.fixture
def counting(pki: Pki) -> CountingSigner:
    return CountingSigner(
        {
            pki.issuing.id: ResponseSigner(pki.issuing.id, pki.issuing.certificate, pki.issuing_key, False),
            pki.root.id: ResponseSigner(pki.root.id, pki.root.certificate, pki.root_key, False),
        }
    )


@pytest.fixture
def counted(
    pki: Pki, store: FakeStore, clock: FakeClock, counting: CountingSigner
) -> OcspResponder[CaCertificate]:
    index = IssuerIndex([pki.root, pki.issuing])
    return OcspResponder(store, lambda _refresh: index, counting, SETTINGS, clock)


def test_a_repeated_request_is_answered_from_memory_without_a_read_or_a_signature(
    counted: OcspResponder[CaCertificate],
    store: FakeStore,
    counting: CountingSigner,
    pki: Pki,
    now: dt.datetime,
) -> None:
    store.issue(pki.issuing.id, 0x81, now)
    request = _request(pki.issuing.certificate, 0x81)
    first = counted.respond(request)
    reads, signatures = store.reads, counting.calls
    assert signatures == 1
    for _ in range(3):
        assert counted.respond(request) == first
        assert counted.remembered(request) == first
    assert (store.reads, counting.calls) == (reads, signatures)  # no database, no signing


def test_memory_serves_only_the_generation_it_was_built_at(
    counted: OcspResponder[CaCertificate],
    store: FakeStore,
    counting: CountingSigner,
    pki: Pki,
    now: dt.datetime,
) -> None:
    store.issue(pki.issuing.id, 0x82, now)
    request = _request(pki.issuing.certificate, 0x82)
    counted.respond(request)
    # Another process revoked: all this worker learns is that the generation moved.
    store.revoke(
        Revocation("82", pki.issuing.id, now, RevocationReason.SUPERSEDED, now + dt.timedelta(days=9))
    )
    assert counted.remembered(request) is None
    assert _status(counted.respond(request).der).certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_an_answer_built_while_a_revocation_commits_is_not_served_after_it(
    pki: Pki, store: FakeStore, clock: FakeClock, counting: CountingSigner, now: dt.datetime
) -> None:
    """The generation is read before the status: a request that read "good" just before a
    revocation committed may still answer good (it began first), but what it remembers is
    tagged with the older generation and never answers the next request."""
    store.issue(pki.issuing.id, 0x83, now)
    revocation = Revocation(
        "83", pki.issuing.id, now, RevocationReason.KEY_COMPROMISE, now + dt.timedelta(days=9)
    )

    class RevokedDuringTheRead(FakeStore):
        def serial_status(self, ca_id: str, serial: str) -> SerialStatus | None:
            status = super().serial_status(ca_id, serial)
            if status is not None and status.revocation is None:
                self.revoke(revocation)  # commits after this read, before the answer is kept
            return status

    racing = RevokedDuringTheRead(serials=dict(store.serials))
    index = IssuerIndex([pki.root, pki.issuing])
    responder = OcspResponder(racing, lambda _refresh: index, counting, SETTINGS, clock)
    request = _request(pki.issuing.certificate, 0x83)
    assert _status(responder.respond(request).der).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert responder.remembered(request) is None
    assert _status(responder.respond(request).der).certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_nonces_and_unknown_serials_are_never_answered_from_memory(
    counted: OcspResponder[CaCertificate],
    store: FakeStore,
    counting: CountingSigner,
    pki: Pki,
    now: dt.datetime,
) -> None:
    store.issue(pki.issuing.id, 0x84, now)
    with_nonce = _request(pki.issuing.certificate, 0x84, nonce=b"\x07" * 16)
    unknown = _request(pki.issuing.certificate, 0x85)
    for request in (with_nonce, unknown):
        first = counted.respond(request)
        assert counted.remembered(request) is None
        signatures = counting.calls
        again = counted.respond(request)
        assert counting.calls == signatures + 1 and again.der != first.der  # signed afresh
    nonce = _status(counted.respond(with_nonce).der).extensions.get_extension_for_class(x509.OCSPNonce)
    assert nonce.value.nonce == b"\x07" * 16
    # An unknown serial may be issued a moment later: no HTTP cache may keep that answer.
    assert counted.respond(unknown).refresh_at is None
    store.issue(pki.issuing.id, 0x85, now)
    assert _status(counted.respond(unknown).der).certificate_status is ocsp.OCSPCertStatus.GOOD


def test_a_multi_certificate_request_without_a_nonce_is_remembered(
    counted: OcspResponder[CaCertificate],
    store: FakeStore,
    counting: CountingSigner,
    pki: Pki,
    now: dt.datetime,
) -> None:
    store.issue(pki.issuing.id, 0x86, now)
    store.issue(pki.issuing.id, 0x87, now)
    request = _request(pki.issuing.certificate, 0x86, 0x87)
    first = counted.respond(request)
    reads = store.reads
    assert counted.respond(request) == first and store.reads == reads
    store.revoke(
        Revocation("87", pki.issuing.id, now, RevocationReason.SUPERSEDED, now + dt.timedelta(days=9))
    )
    answers = {r.serial_number: r.certificate_status for r in _status(counted.respond(request).der).responses}
    assert answers == {0x86: ocsp.OCSPCertStatus.GOOD, 0x87: ocsp.OCSPCertStatus.REVOKED}


def test_memory_is_bounded(pki: Pki, store: FakeStore, clock: FakeClock, counting: CountingSigner) -> None:
    index = IssuerIndex([pki.root, pki.issuing])
    small = OcspResponder(store, lambda _refresh: index, counting, SETTINGS, clock, memory_entries=3)
    requests = []
    for serial in range(0x90, 0x95):
        store.issue(pki.issuing.id, serial, clock.now())
        requests.append(_request(pki.issuing.certificate, serial))
        small.respond(requests[-1])
    assert [small.remembered(r) is not None for r in requests] == [False, False, True, True, True]

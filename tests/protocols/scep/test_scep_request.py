"""Finding a pkiMessage's signer certificate (RFC 5652 section 5.3): by issuer and serial,
the issuer compared by encoding first and, when a client re-encoded it, as RFC 5280 names.
The fast DER reader of the usual shape answers exactly as the asn1crypto reader does."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from certfleet.protocols.scep import MalformedMessage, _request
from certfleet.protocols.scep._der import read_signed
from certfleet.protocols.scep._request import parse_pki_message
from tests.protocols.scep.client import Message, rsa_key, self_signed


def _printable_self_signed(key: object) -> x509.Certificate:
    """A device certificate whose names are PrintableStrings (as some firmware writes them)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Device 7", _type=_ASN1Type.PrintableString)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(4242)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )


def _with_sid(message: bytes, issuer: asn1_x509.Name, serial_number: int) -> bytes:
    info = cms.ContentInfo.load(message)
    signer_info = info["content"]["signer_infos"][0]
    signer_info["sid"] = cms.SignerIdentifier(
        name="issuer_and_serial_number", value={"issuer": issuer, "serial_number": serial_number}
    )
    return bytes(info.dump(force=True))


def test_a_signer_named_with_a_re_encoded_issuer_is_still_found() -> None:
    key = rsa_key()
    device = _printable_self_signed(key)
    message = Message("19", b"envelope", device, key).build()
    # The same name as a UTF8String: different bytes, equal under RFC 5280 section 7.1.
    utf8 = asn1_x509.Name.build({"common_name": "device 7"})
    assert utf8.dump() != asn1_x509.Name.load(device.issuer.public_bytes()).dump()

    parsed = parse_pki_message(_with_sid(message, utf8, device.serial_number))

    assert parsed.failure is None and parsed.request is not None
    assert parsed.request.signer.public_bytes(serialization.Encoding.DER) == device.public_bytes(
        serialization.Encoding.DER
    )


@pytest.mark.parametrize(("issuer_cn", "serial_offset"), [("someone else", 0), ("device 7", 1)])
def test_a_signer_with_another_issuer_or_serial_is_not_found(issuer_cn: str, serial_offset: int) -> None:
    key = rsa_key()
    device = _printable_self_signed(key)
    message = Message("19", b"envelope", device, key).build()
    other = asn1_x509.Name.build({"common_name": issuer_cn})
    with pytest.raises(MalformedMessage, match="signer's certificate"):
        parse_pki_message(_with_sid(message, other, device.serial_number + serial_offset))


def _outcome(message: bytes) -> object:
    try:
        parsed = parse_pki_message(message)
    except MalformedMessage as exc:
        return ("malformed", str(exc))
    except Exception as exc:  # whatever it is, both readers must agree on it
        return ("error", type(exc).__name__, str(exc))
    failure = parsed.failure
    return (parsed.reply_to, parsed.request, failure and (failure.fail_info, failure.detail))


def _spoiled(messages: list[bytes], count: int) -> list[bytes]:
    """Each message altered at random (fixed seed): bytes replaced, bits flipped, cut short,
    a byte inserted."""
    rng = random.Random(8894)
    spoiled = []
    for _ in range(count):
        message = bytearray(rng.choice(messages))
        at = rng.randrange(len(message))
        match rng.randrange(4):
            case 0:
                message[at] = rng.randrange(256)
            case 1:
                message[at] ^= 1 << rng.randrange(8)
            case 2:
                del message[at:]
            case _:
                message[at:at] = bytes([rng.randrange(256)])
        spoiled.append(bytes(message))
    return spoiled


def test_the_fast_reader_answers_as_asn1crypto_for_good_and_spoiled_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = rsa_key()
    device = self_signed(key)
    now = dt.datetime.now(dt.UTC)
    messages = [
        Message(kind, envelope, device, key, digest=digest, signing_time=when).build(tamper=tamper)
        for kind in ("19", "3", "99")
        for envelope in (b"envelope" * 40, b"")
        for digest in ("sha256", "sha1")
        for when in (None, now)
        for tamper in (False, True)
    ]
    assert all(read_signed(message) is not None for message in messages)  # the usual shape
    cases = [*messages, *_spoiled(messages, 600)]

    fast = [_outcome(message) for message in cases]
    monkeypatch.setattr(_request, "read_signed", lambda der: None)  # asn1crypto reads all
    general = [_outcome(message) for message in cases]

    assert fast == general
    assert sum(read_signed(message) is not None for message in cases) > len(messages)

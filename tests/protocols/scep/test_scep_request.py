"""Finding a pkiMessage's signer certificate (RFC 5652 section 5.3): by issuer and serial,
the issuer compared by encoding first and, when a client re-encoded it, as RFC 5280 names."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from certfleet.protocols.scep import MalformedMessage
from certfleet.protocols.scep._request import parse_pki_message
from tests.protocols.scep.client import Message, rsa_key


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

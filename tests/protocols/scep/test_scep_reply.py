"""The CertRep's signed attributes, assembled from DER parts, are byte for byte what
asn1crypto's CMS encoder makes of the same attributes (the signature covers these bytes,
and clients re-encode them to verify it)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from asn1crypto import cms, core

from certfleet.protocols.scep._attributes import MESSAGE_TYPE, RECIPIENT_NONCE, TRANSACTION_ID
from certfleet.protocols.scep._reply import signed_attributes


def _reference(content: bytes, transaction_id: str, nonce: bytes, now: dt.datetime) -> bytes:
    return bytes(
        cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["data"]},
                {"type": "signing_time", "values": [cms.Time({"utc_time": now})]},
                {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
                {
                    "type": cms.CMSAttributeType(TRANSACTION_ID),
                    "values": [core.PrintableString(transaction_id)],
                },
                {"type": cms.CMSAttributeType(MESSAGE_TYPE), "values": [core.PrintableString("3")]},
                {"type": cms.CMSAttributeType(RECIPIENT_NONCE), "values": [core.OctetString(nonce)]},
            ]
        ).dump()
    )


@pytest.mark.parametrize(
    ("content", "transaction_id"),
    [
        (b"", "A1B2C3"),
        (b"x" * 5000, "F" * 128),  # the longest transactionID accepted: long-form lengths
        (b"envelope", "caf\u00e9-id"),  # latin-1, as asn1crypto encodes a PrintableString
    ],
)
def test_signed_attributes_match_the_reference_encoder(content: bytes, transaction_id: str) -> None:
    now = dt.datetime(2026, 12, 3, 12, 0, 5, tzinfo=dt.UTC)
    nonce = bytes(range(16))
    ours = signed_attributes(
        content,
        [
            _attr(TRANSACTION_ID, 0x13, transaction_id.encode("latin-1")),
            _attr(MESSAGE_TYPE, 0x13, b"3"),
            _attr(RECIPIENT_NONCE, 0x04, nonce),
        ],
        now,
    )
    assert ours == _reference(content, transaction_id, nonce, now)
    cms.CMSAttributes.load(ours).native  # and it parses back  # noqa: B018


def _attr(oid: str, tag: int, value: bytes) -> bytes:
    return bytes(cms.CMSAttribute({"type": cms.CMSAttributeType(oid), "values": [_value(tag, value)]}).dump())


def _value(tag: int, value: bytes) -> core.Asn1Value:
    return core.PrintableString(value.decode("latin-1")) if tag == 0x13 else core.OctetString(value)

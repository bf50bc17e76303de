from __future__ import annotations

import pytest

from certfleet.revocation import _der


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 65535, 70000])
def test_encode_then_read_round_trips_every_length_form(size: int) -> None:
    content = bytes(range(256)) * (size // 256) + bytes(size % 256)
    encoded = _der.encode(_der.OCTET_STRING, content)
    element = _der.single(encoded)
    assert (element.tag, element.content, element.raw) == (_der.OCTET_STRING, content, encoded)


def test_elements_splits_a_sequence_in_order() -> None:
    parts = [
        _der.encode(_der.INTEGER, b"\x01"),
        _der.encode(_der.OCTET_STRING, b"ab"),
        _der.encode(0xA0, b""),
    ]
    sequence = _der.encode(_der.SEQUENCE, b"".join(parts))
    assert [e.raw for e in _der.elements(_der.single(sequence).content)] == parts


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\x30", "truncated"),
        (b"\x30\x05\x02\x01", "truncated"),
        (b"\x30\x80\x00\x00", "indefinite"),
        (b"\x30\x81\x05\x00\x00\x00\x00\x00", "minimally"),
        (b"\x30\x82\x00\x80" + bytes(128), "minimally"),
        (b"\x30\x85\x00\x00\x00\x00\x01\x00", "bad or truncated length"),
        (b"\x1f\x81\x01\x00", "multi-octet tags"),
        (b"\x04\x00\x00", "trailing"),
    ],
)
def test_malformed_der_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(_der.DerError, match=message):
        _der.single(data)

from __future__ import annotations

import pytest

from certfleet.x509 import der


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 65535, 70000])
def test_encode_then_read_round_trips_every_length_form(size: int) -> None:
    content = bytes(range(256)) * (size // 256) + bytes(size % 256)
    encoded = der.encode(der.OCTET_STRING, content)
    element = der.single(encoded)
    assert (element.tag, element.content, element.raw) == (der.OCTET_STRING, content, encoded)
    assert element.end == element.after == len(encoded)


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (127, b"\x04\x7f"),
        (128, b"\x04\x81\x80"),
        (255, b"\x04\x81\xff"),
        (256, b"\x04\x82\x01\x00"),
        (70000, b"\x04\x83\x01\x11\x70"),
    ],
)
def test_long_form_lengths_use_the_fewest_octets(size: int, header: bytes) -> None:
    encoded = der.encode(der.OCTET_STRING, bytes(size))
    assert encoded[: len(header)] == header
    element = der.read_element(encoded)
    assert (element.offset, element.start, element.end) == (0, len(header), len(header) + size)


def test_elements_splits_a_sequence_in_order() -> None:
    parts = [
        der.encode(der.INTEGER, b"\x01"),
        der.encode(der.OCTET_STRING, b"ab"),
        der.encode(0xA0, b""),
    ]
    sequence = der.encode(der.SEQUENCE, b"".join(parts))
    assert [e.raw for e in der.elements(der.single(sequence).content)] == parts


def test_nested_structures_keep_offsets_into_the_same_buffer() -> None:
    inner = der.encode(der.SEQUENCE, der.encode(der.OID, b"\x2a\x03") + der.encode(der.INTEGER, b"\x05"))
    outer = der.encode(der.SEQUENCE, der.encode(der.INTEGER, b"\x00") + inner + der.encode(0xA0, bytes(200)))
    top = der.single(outer)
    version, nested, tagged = der.elements(outer, top.start, top.end)
    assert (version.tag, nested.tag, tagged.tag) == (der.INTEGER, der.SEQUENCE, 0xA0)
    assert nested.raw == inner and nested.constructed and not version.constructed
    assert len(tagged.content) == 200
    oid, number = der.elements(outer, nested.start, nested.end)
    assert (oid.content, number.content) == (b"\x2a\x03", b"\x05")
    assert oid.source is outer and oid.offset == nested.start
    # Reading the children of the copied content gives the same elements, offsets aside.
    assert [e.raw for e in der.elements(nested.content)] == [oid.raw, number.raw]


def test_a_child_may_not_run_past_its_container() -> None:
    # The SEQUENCE claims 3 octets of content, but its INTEGER claims 4.
    data = b"\x30\x03\x02\x04\x00\x00\x00\x00"
    with pytest.raises(der.DerError, match="truncated"):
        der.elements(data, 2, 5)
    # Without the container's bound the same bytes read as a whole INTEGER.
    assert der.read_element(data, 2).content == b"\x00\x00\x00\x00"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\x30", "truncated"),
        (b"\x30\x05\x02\x01", "truncated"),
        (b"\x04\x82\x01", "bad or truncated length"),
        (b"\x30\x80\x00\x00", "indefinite"),
        (b"\x30\x81\x05\x00\x00\x00\x00\x00", "minimally"),
        (b"\x30\x82\x00\x80" + bytes(128), "minimally"),
        (b"\x30\x85\x00\x00\x00\x00\x01\x00", "bad or truncated length"),
        (b"\x1f\x81\x01\x00", "multi-octet tags"),
        (b"\x04\x00\x00", "trailing"),
    ],
)
def test_malformed_der_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(der.DerError, match=message):
        der.single(data)


def test_every_truncation_of_a_nested_value_is_refused() -> None:
    value = der.encode(
        der.SEQUENCE, der.encode(der.OCTET_STRING, bytes(300)) + der.encode(der.INTEGER, b"\x07")
    )
    for cut in range(len(value)):
        with pytest.raises(der.DerError):
            der.single(value[:cut])


def test_der_error_is_a_value_error() -> None:
    # Callers (CSR loading, OCSP parsing) catch ValueError around the reader.
    with pytest.raises(ValueError, match="indefinite"):
        der.single(b"\x30\x80\x00\x00")


def test_ber_indefinite_length_runs_to_its_end_of_contents() -> None:
    chunk = der.encode(der.OCTET_STRING, b"ab")
    data = b"\x24\x80" + chunk + b"\x30\x80" + chunk + b"\x00\x00" + b"\x00\x00" + b"\x05\x00"
    element = der.read_element(data, ber=True)
    assert element.tag == 0x24
    assert element.content == chunk + b"\x30\x80" + chunk + b"\x00\x00"
    assert element.after == element.end + 2 == len(data) - 2
    assert [e.tag for e in der.elements(data, ber=True)] == [0x24, 0x05]
    nested = der.elements(data, element.start, element.end, ber=True)
    assert [e.tag for e in nested] == [der.OCTET_STRING, der.SEQUENCE]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x30\x80\x02\x01\x00", "without end-of-contents"),
        (b"\x04\x80\x00\x00", "primitive"),
        (b"\x30\x80" * 40 + b"\x00\x00" * 40, "nested too deeply"),
    ],
)
def test_ber_reading_stays_bounded(data: bytes, message: str) -> None:
    with pytest.raises(der.DerError, match=message):
        der.read_element(data, ber=True)


def test_ber_accepts_lengths_der_refuses_as_not_minimal() -> None:
    data = b"\x04\x82\x00\x02ab"
    assert der.read_element(data, ber=True).content == b"ab"
    with pytest.raises(der.DerError, match="minimally"):
        der.read_element(data)

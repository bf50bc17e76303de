"""Just enough DER (ITU-T X.690) to split and join the OCSP structures cryptography cannot.

cryptography parses an OCSP request with exactly one ``Request`` and builds a response with
exactly one ``SingleResponse``. RFC 6960 section 4.1.1 allows a ``requestList`` of several,
and clients that batch (for example ``openssl ocsp -cert a -cert b``) expect one answer for
each. Rather than a second ASN.1 implementation, this module only cuts structures into their
TLV elements and glues them back together; every element keeps being parsed or produced by
cryptography.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DerError", "Element", "elements", "encode", "read_element", "single"]

SEQUENCE = 0x30
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
ENUMERATED = 0x0A
OID = 0x06


class DerError(ValueError):
    """The bytes are not well-formed DER."""


@dataclass(frozen=True)
class Element:
    """One TLV: ``tag`` is the identifier octet, ``raw`` the whole encoding, ``content`` the value."""

    tag: int
    raw: bytes
    content: bytes


def read_element(data: bytes, offset: int = 0) -> tuple[Element, int]:
    """Read the TLV starting at ``offset``; return it and the offset after it.

    Only single-octet tags occur in the structures handled here; a high tag number form
    (low five bits all set) is refused rather than mis-read. DER forbids the indefinite
    length form (X.690 section 10.1), so it is refused too.
    """
    if offset + 2 > len(data):
        raise DerError("truncated: no room for a tag and a length")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-octet tags are not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError("indefinite length is not DER")
    else:
        count = first & 0x7F
        if count > 4 or pos + count > len(data):
            raise DerError("bad or truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise DerError("length is not minimally encoded")
        pos += count
    end = pos + length
    if end > len(data):
        raise DerError("truncated: the value is shorter than its length says")
    return Element(tag, data[offset:end], data[pos:end]), end


def elements(content: bytes) -> list[Element]:
    """The TLVs that make up a constructed value's ``content``, in order."""
    out: list[Element] = []
    offset = 0
    while offset < len(content):
        element, offset = read_element(content, offset)
        out.append(element)
    return out


def single(data: bytes) -> Element:
    """``data`` must be exactly one TLV, with nothing after it."""
    element, end = read_element(data)
    if end != len(data):
        raise DerError("trailing bytes after the DER value")
    return element


def encode(tag: int, content: bytes) -> bytes:
    """One TLV with a minimal definite length."""
    length = len(content)
    if length < 0x80:
        header = bytes([tag, length])
    else:
        octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
        header = bytes([tag, 0x80 | len(octets)]) + octets
    return header + content

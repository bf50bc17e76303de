"""Just enough DER (ITU-T X.690) to cut structures into their TLV elements and glue them back.

cryptography exposes no generic DER parser, and its typed parsers hide exactly what a few
callers must see: it maps explicit EC curve parameters back to a named curve (RFC 5480
section 2.1.1 requires the named form, so ``x509.csr`` checks the raw SubjectPublicKeyInfo),
it accepts only one ``Request`` per OCSPRequest and builds only one ``SingleResponse``
(RFC 6960 section 4.1.1 allows several, so ``revocation`` splits and joins them), and
``discovery`` must measure a file and cap PKCS#12 / PKCS#8 iteration counts (RFC 7292
appendix C, RFC 8018 appendix A.2) before handing it to a real parser. Rather than a second
ASN.1 implementation, this module only reads headers, lists children and encodes one TLV;
every element keeps being parsed or produced by cryptography.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BIT_STRING",
    "INTEGER",
    "OCTET_STRING",
    "OID",
    "SEQUENCE",
    "DerError",
    "Element",
    "elements",
    "encode",
    "read_element",
    "single",
]

SEQUENCE = 0x30
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06

MAX_DEPTH = 32  # nested indefinite lengths followed before giving up (BER only)


class DerError(ValueError):
    """The bytes are not well-formed DER (or, with ``ber=True``, BER)."""


@dataclass(frozen=True)
class Element:
    """One TLV inside ``source``: the header starts at ``offset``, the value spans
    ``source[start:end]`` and the next element starts at ``after`` (past an end-of-contents
    marker for a BER indefinite length, else equal to ``end``)."""

    tag: int
    offset: int
    start: int
    end: int
    after: int
    source: bytes = field(repr=False)

    @property
    def raw(self) -> bytes:
        """The whole encoding: tag, length and value."""
        return self.source[self.offset : self.after]

    @property
    def content(self) -> bytes:
        """The value octets."""
        return self.source[self.start : self.end]

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)


def read_element(
    data: bytes, offset: int = 0, limit: int | None = None, *, ber: bool = False, depth: int = 0
) -> Element:
    """Read the TLV starting at ``offset``; it must end by ``limit`` (default: the end of ``data``).

    Only single-octet tags occur in the structures handled here; a high tag number form
    (low five bits all set) is refused rather than mis-read. DER forbids the indefinite
    length form and non-minimal lengths (X.690 section 10.1), so both are refused unless
    ``ber`` is set: files found on disk may be BER (Windows and old Java write PKCS#12 so).
    """
    if depth > MAX_DEPTH:
        raise DerError("nested too deeply")
    end_of_data = len(data) if limit is None else min(limit, len(data))
    if offset < 0 or offset + 2 > end_of_data:
        raise DerError("truncated: no room for a tag and a length")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-octet tags are not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        if not ber:
            raise DerError("indefinite length is not DER")
        if not tag & 0x20:
            raise DerError("indefinite length on a primitive value (X.690 section 8.1.3.2)")
        # The content runs to an end-of-contents marker at this level (X.690 section 8.1.3.6).
        cursor = pos
        while True:
            if cursor + 2 > end_of_data:
                raise DerError("indefinite length without end-of-contents")
            if data[cursor] == 0 and data[cursor + 1] == 0:
                return Element(tag, offset, pos, cursor, cursor + 2, data)
            cursor = read_element(data, cursor, end_of_data, ber=True, depth=depth + 1).after
    else:
        count = first & 0x7F
        if count > 4 or pos + count > end_of_data:
            raise DerError("bad or truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if not ber and (length < 0x80 or data[pos] == 0):
            raise DerError("length is not minimally encoded")
        pos += count
    end = pos + length
    if end > end_of_data:
        raise DerError("truncated: the value is shorter than its length says")
    return Element(tag, offset, pos, end, end, data)


def elements(data: bytes, start: int = 0, end: int | None = None, *, ber: bool = False) -> list[Element]:
    """The TLVs laid one after another in ``data[start:end]``, in order: a constructed
    value's children when given its ``content`` (or ``element.source, element.start,
    element.end``)."""
    limit = len(data) if end is None else min(end, len(data))
    out: list[Element] = []
    offset = start
    while offset < limit:
        element = read_element(data, offset, limit, ber=ber)
        out.append(element)
        offset = element.after
    return out


def single(data: bytes) -> Element:
    """``data`` must be exactly one DER TLV, with nothing after it."""
    element = read_element(data)
    if element.after != len(data):
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

"""Just enough DER (X.690) to look inside a file before handing it to a real parser: the
outer length (is this whole file one DER object?) and the key-derivation iteration counts
of PKCS#12 and PKCS#8 (RFC 7292 appendix B and C, RFC 8018 appendix A.2), which an attacker
sets to billions to make a scanner spin."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["DerError", "Element", "elements", "max_iteration_count", "outer_length"]

_SEQUENCE = 0x30
_INTEGER = 0x02
_OCTET_STRING = 0x04
_MAX_NODES = 200_000
_MAX_DEPTH = 32


class DerError(ValueError):
    pass


@dataclass(frozen=True)
class Element:
    tag: int
    start: int  # offset of the content
    end: int  # offset after the content
    after: int  # offset of the next element (past an end-of-contents marker for BER)

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)


def _header(data: bytes, offset: int, limit: int, depth: int = 0) -> Element:
    if depth > _MAX_DEPTH:
        raise DerError("nested too deeply")
    if offset + 2 > limit:
        raise DerError("truncated header")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not used by these formats")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80 and tag & 0x20:
        # BER indefinite length (Windows and old Java write PKCS#12 so): the content runs
        # to an end-of-contents marker at this level (X.690 section 8.1.3.6).
        cursor = pos
        while True:
            if cursor + 2 > limit:
                raise DerError("indefinite length without end-of-contents")
            if data[cursor] == 0 and data[cursor + 1] == 0:
                return Element(tag, pos, cursor, cursor + 2)
            cursor = _header(data, cursor, limit, depth + 1).after
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > limit:
            raise DerError("bad or indefinite length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > limit:
        raise DerError("length runs past the end")
    return Element(tag, pos, pos + length, pos + length)


def elements(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Element]:
    """The elements laid one after another in ``data[start:end]``."""
    limit = len(data) if end is None else end
    offset = start
    while offset < limit:
        element = _header(data, offset, limit)
        yield element
        offset = element.after


def outer_length(data: bytes) -> int | None:
    """The total size of the first DER element, or ``None`` if there is none."""
    try:
        element = _header(data, 0, len(data))
    except DerError:
        return None
    return element.after


def max_iteration_count(data: bytes) -> int:
    """The largest iteration count in any (salt OCTET STRING, iterations INTEGER) pair in a
    SEQUENCE: the shape of PKCS#12 MacData and PBE parameters and of PBKDF2-params. OCTET
    STRINGs are searched too, BER-chunked ones reassembled (PKCS#12 wraps its contents in
    them). Raises DerError on a structure it cannot walk."""
    budget = [_MAX_NODES]
    return _scan(data, 0, budget)


def _scan(data: bytes, depth: int, budget: list[int]) -> int:
    highest = 0
    stack: list[tuple[int, int, int]] = [(0, len(data), depth)]
    while stack:
        start, end, level = stack.pop()
        children = list(elements(data, start, end))
        budget[0] -= len(children)
        if budget[0] < 0:
            raise DerError("too many elements")
        for index, child in enumerate(children):
            if (
                child.tag == _INTEGER
                and index > 0
                and children[index - 1].tag == _OCTET_STRING
                and child.end - child.start <= 16
            ):
                highest = max(highest, int.from_bytes(data[child.start : child.end], "big"))
            if level >= _MAX_DEPTH:
                continue
            if child.tag == _OCTET_STRING | 0x20:
                chunks = b"".join(data[c.start : c.end] for c in elements(data, child.start, child.end))
                if _is_whole_der(chunks):
                    highest = max(highest, _scan(chunks, level + 1, budget))
            elif child.constructed or (
                child.tag == _OCTET_STRING and _is_whole_der(data[child.start : child.end])
            ):
                stack.append((child.start, child.end, level + 1))
    return highest


def _is_whole_der(data: bytes) -> bool:
    return len(data) > 2 and data[0] == _SEQUENCE and outer_length(data) == len(data)

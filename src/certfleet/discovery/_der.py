"""What discovery reads from raw DER (X.690) before handing a file to a real parser: the
outer length (is this whole file one DER object?) and the key-derivation iteration counts
of PKCS#12 and PKCS#8 (RFC 7292 appendix B and C, RFC 8018 appendix A.2), which an attacker
sets to billions to make a scanner spin. Files on disk may be BER, so every read here passes
``ber=True`` to the shared reader in ``certfleet.x509.der``."""

from __future__ import annotations

from certfleet.x509.der import INTEGER, OCTET_STRING, SEQUENCE, DerError, elements, read_element

__all__ = ["iteration_counts", "max_iteration_count", "outer_length"]

_MAX_NODES = 200_000
_MAX_DEPTH = 32


def outer_length(data: bytes) -> int | None:
    """The total size of the first DER element, or ``None`` if there is none."""
    try:
        element = read_element(data, ber=True)
    except DerError:
        return None
    return element.after


def max_iteration_count(data: bytes) -> int:
    """The largest of :func:`iteration_counts` (0 when there is none)."""
    return max(iteration_counts(data), default=0)


def iteration_counts(data: bytes) -> list[int]:
    """Every iteration count in a (salt OCTET STRING, iterations INTEGER) pair in a SEQUENCE:
    the shape of PKCS#12 MacData and PBE parameters and of PBKDF2-params. OCTET STRINGs are
    searched too, BER-chunked ones reassembled (PKCS#12 wraps its contents in them). Raises
    DerError on a structure it cannot walk."""
    counts: list[int] = []
    _scan(data, 0, [_MAX_NODES], counts)
    return counts


def _scan(data: bytes, depth: int, budget: list[int], counts: list[int]) -> None:
    stack: list[tuple[int, int, int]] = [(0, len(data), depth)]
    while stack:
        start, end, level = stack.pop()
        children = elements(data, start, end, ber=True)
        budget[0] -= len(children)
        if budget[0] < 0:
            raise DerError("too many elements")
        for index, child in enumerate(children):
            if (
                child.tag == INTEGER
                and index > 0
                and children[index - 1].tag == OCTET_STRING
                and child.end - child.start <= 16
            ):
                counts.append(int.from_bytes(data[child.start : child.end], "big"))
            if level >= _MAX_DEPTH:
                continue
            if child.tag == OCTET_STRING | 0x20:
                chunks = b"".join(c.content for c in elements(data, child.start, child.end, ber=True))
                if _is_whole_der(chunks):
                    _scan(chunks, level + 1, budget, counts)
            elif child.constructed or (
                child.tag == OCTET_STRING and _is_whole_der(data[child.start : child.end])
            ):
                stack.append((child.start, child.end, level + 1))


def _is_whole_der(data: bytes) -> bool:
    return len(data) > 2 and data[0] == SEQUENCE and outer_length(data) == len(data)

"""Just enough DER reading to look at a field ``cryptography`` normalises away.

``cryptography`` turns an EC public key with explicit curve parameters that match a named
curve into that named curve, so the parsed key can no longer tell us how the requester
encoded it. RFC 5480 section 2.1.1 says the parameters MUST be a namedCurve in PKIX; the
encoding is checked on the raw SubjectPublicKeyInfo.
"""

from __future__ import annotations

__all__ = ["ec_parameters_tag", "spki_of_request_info"]

_SEQUENCE = 0x30
_OID = 0x06
# DER of the OBJECT IDENTIFIER id-ecPublicKey, 1.2.840.10045.2.1 (RFC 5480 section 2.1.1).
_ID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")


def _element(data: bytes, offset: int) -> tuple[int, int, int, int]:
    """Return (tag, content start, content end, element start) of the element at ``offset``."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER element")
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first & 0x80:
        count = first & 0x7F
        if not 1 <= count <= 4 or start + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    else:
        length = first
    end = start + length
    if end > len(data):
        raise ValueError("DER element runs past its container")
    return tag, start, end, offset


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    out = []
    offset = start
    while offset < end:
        element = _element(data, offset)
        out.append(element)
        offset = element[2]
    return out


def spki_of_request_info(request_info: bytes) -> bytes:
    """The SubjectPublicKeyInfo inside a CertificationRequestInfo (RFC 2986 section 4.1:
    version, subject, subjectPKInfo, attributes)."""
    tag, start, end, _ = _element(request_info, 0)
    if tag != _SEQUENCE:
        raise ValueError("CertificationRequestInfo is not a SEQUENCE")
    children = _children(request_info, start, end)
    if len(children) < 3 or children[2][0] != _SEQUENCE:
        raise ValueError("CertificationRequestInfo has no SubjectPublicKeyInfo")
    _, _, spki_end, spki_start = children[2]
    return request_info[spki_start:spki_end]


def ec_parameters_tag(spki: bytes) -> int | None:
    """For an id-ecPublicKey SubjectPublicKeyInfo, the DER tag of its parameters: 0x06 for a
    namedCurve, 0x30 for explicit ECParameters, 0x05 for implicitlyCA. None for other keys."""
    tag, start, end, _ = _element(spki, 0)
    if tag != _SEQUENCE:
        raise ValueError("SubjectPublicKeyInfo is not a SEQUENCE")
    algorithm = _children(spki, start, end)[0]
    if algorithm[0] != _SEQUENCE:
        raise ValueError("AlgorithmIdentifier is not a SEQUENCE")
    parts = _children(spki, algorithm[1], algorithm[2])
    if not parts or parts[0][0] != _OID:
        raise ValueError("AlgorithmIdentifier has no algorithm OID")
    oid = spki[parts[0][3] : parts[0][2]]
    if oid != _ID_EC_PUBLIC_KEY:
        return None
    if len(parts) < 2:
        return 0x05  # absent parameters: no curve named either
    return parts[1][0]

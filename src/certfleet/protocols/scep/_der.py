"""A fast reader for the usual shape of a pkiMessage: one DER walk over the SignedData
instead of asn1crypto's objects (which were most of a PKIOperation's parsing CPU).

It answers only for messages it reads completely: DER lengths, the fields RFC 5652 section
5 lists in their order, one signer named by issuer and serial number and carried as the
first certificate with the very same issuer and serial bytes, a digest of RFC 8894 section
3.5.2, signed attributes whose values have the one encoding SCEP clients use
(PrintableString, OCTET STRING, UTCTime or GeneralizedTime). Anything else (BER, a subject
key identifier, another string type, an attribute asn1crypto gives a type of its own, or
plain garbage) returns None and ``parse_pki_message`` reads the message with asn1crypto as
before, so both what is refused and how are unchanged: this reader accepts a subset of what
asn1crypto accepts and reads the same values from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import algos, cms

from certfleet.protocols.scep._attributes import MESSAGE_TYPE, SENDER_NONCE, TRANSACTION_ID

__all__ = ["MESSAGE_DIGEST", "SIGNING_TIME", "RawValue", "SignedFields", "oid_contents", "read_signed"]


class _NotHandled(Exception):
    """Not the shape this reader knows: asn1crypto reads the message."""


@dataclass(frozen=True)
class RawValue:
    """One attribute value: its tag, its contents, and the whole element."""

    tag: int
    contents: bytes
    element: bytes


@dataclass(frozen=True)
class SignedFields:
    """What ``parse_pki_message`` needs of a SignedData, as bytes and raw TLVs."""

    certificate: bytes  # the signer's certificate, DER
    digest_name: str  # asn1crypto's name of the digest algorithm
    signed_der: bytes  # the signed attributes as the DER SET OF that was signed
    signature: bytes
    attributes: dict[bytes, list[RawValue]]  # attribute OID (DER contents) -> its values
    content: bytes  # the encapsulated content (the pkcsPKIEnvelope)


def _tlv(data: bytes, position: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the element at ``position``: DER
    definite lengths in minimal form only (X.690 section 10.1)."""
    if position + 2 > end:
        raise _NotHandled
    tag = data[position]
    if tag & 0x1F == 0x1F:  # high tag numbers: none in CMS
        raise _NotHandled
    length = data[position + 1]
    position += 2
    if length & 0x80:
        octets = length & 0x7F
        if octets == 0 or octets > 4 or position + octets > end or data[position] == 0:
            raise _NotHandled  # indefinite (BER), absurd, or not minimal
        length = int.from_bytes(data[position : position + octets], "big")
        if length < 0x80:
            raise _NotHandled
        position += octets
    if position + length > end:
        raise _NotHandled
    return tag, position, position + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, contents start, end) of each element between ``start`` and ``end``."""
    found = []
    while start < end:
        tag, contents, stop = _tlv(data, start, end)
        found.append((tag, start, contents, stop))
        start = stop
    return found


def _expect(children: list[tuple[int, int, int, int]], tags: tuple[int, ...]) -> None:
    if tuple(child[0] for child in children) != tags:
        raise _NotHandled


def _oid(name: str) -> bytes:
    return bytes(cms.ContentType(name).contents)


_SIGNED_DATA = _oid("signed_data")
_DATA = _oid("data")
_DIGESTS = {
    bytes(algos.DigestAlgorithmId(name).contents): name for name in ("sha1", "sha256", "sha384", "sha512")
}


def oid_contents(attribute: str) -> bytes:
    """An attribute type's OID as the contents of its DER encoding (the ``attributes`` keys)."""
    return bytes(cms.CMSAttributeType(attribute).contents)


_CONTENT_TYPE = oid_contents("content_type")
MESSAGE_DIGEST = oid_contents("message_digest")
SIGNING_TIME = oid_contents("signing_time")
# The tag each attribute asn1crypto types must have; an attribute it types that is not here
# (a counter-signature, S/MIME capabilities...) sends the message to asn1crypto.
_TYPED = {_CONTENT_TYPE: (0x06,), MESSAGE_DIGEST: (0x04,), SIGNING_TIME: (0x17, 0x18)}
_ASN1CRYPTO_TYPED = frozenset(oid_contents(name) for name in cms.CMSAttribute._oid_specs)
# SCEP's attributes (untyped for asn1crypto) are read here in the encoding clients use only;
# other untyped attributes are not read at all, so any element will do.
_SCEP = {
    oid_contents(oid): tags
    for oid, tags in ((MESSAGE_TYPE, (0x13,)), (TRANSACTION_ID, (0x13,)), (SENDER_NONCE, (0x04,)))
}


def _attributes(data: bytes, start: int, end: int) -> dict[bytes, list[RawValue]]:
    found: dict[bytes, list[RawValue]] = {}
    for tag, _, contents, stop in _children(data, start, end):
        if tag != 0x30:
            raise _NotHandled
        fields = _children(data, contents, stop)
        _expect(fields, (0x06, 0x31))
        oid = data[fields[0][2] : fields[0][3]]
        allowed = _TYPED.get(oid) or _SCEP.get(oid)
        if allowed is None and oid in _ASN1CRYPTO_TYPED:
            raise _NotHandled
        values = found.setdefault(oid, [])
        for value_tag, value_start, value_contents, value_end in _children(data, fields[1][2], fields[1][3]):
            if allowed is not None and value_tag not in allowed:
                raise _NotHandled
            values.append(RawValue(value_tag, data[value_contents:value_end], data[value_start:value_end]))
    return found


def _read(der: bytes) -> SignedFields:
    size = len(der)
    tag, start, end = _tlv(der, 0, size)
    if tag != 0x30 or end != size:
        raise _NotHandled
    info = _children(der, start, end)
    _expect(info, (0x06, 0xA0))
    if der[info[0][2] : info[0][3]] != _SIGNED_DATA:
        raise _NotHandled
    signed_tag, signed_start, signed_end = _tlv(der, info[1][2], info[1][3])
    if signed_tag != 0x30 or signed_end != info[1][3]:
        raise _NotHandled
    signed = _children(der, signed_start, signed_end)
    _expect(signed, (0x02, 0x31, 0x30, 0xA0, 0x31))  # no CRLs: none in a request
    # EncapsulatedContentInfo: id-data (asn1crypto reads other types' content as their
    # structures) and the content, [0] EXPLICIT OCTET STRING.
    encap = _children(der, signed[2][2], signed[2][3])
    _expect(encap[:1], (0x06,))
    if der[encap[0][2] : encap[0][3]] != _DATA:
        raise _NotHandled
    if len(encap) == 1:
        content = b""
    else:
        _expect(encap, (0x06, 0xA0))
        octets = _children(der, encap[1][2], encap[1][3])
        _expect(octets, (0x04,))
        content = der[octets[0][2] : octets[0][3]]
    signer_infos = _children(der, signed[4][2], signed[4][3])
    _expect(signer_infos, (0x30,))
    fields = _children(der, signer_infos[0][2], signer_infos[0][3])
    tags = tuple(field[0] for field in fields)
    if tags not in ((0x02, 0x30, 0x30, 0xA0, 0x30, 0x04), (0x02, 0x30, 0x30, 0xA0, 0x30, 0x04, 0xA1)):
        raise _NotHandled
    # sid: IssuerAndSerialNumber, matched byte for byte against the first certificate's.
    sid = _children(der, fields[1][2], fields[1][3])
    _expect(sid, (0x30, 0x02))
    certificates = _children(der, signed[3][2], signed[3][3])
    if not certificates or certificates[0][0] != 0x30:
        raise _NotHandled
    _, cert_start, cert_contents, cert_end = certificates[0]
    cert = _children(der, cert_contents, cert_end)
    if not cert or cert[0][0] != 0x30:
        raise _NotHandled
    tbs = _children(der, cert[0][2], cert[0][3])
    if tbs and tbs[0][0] == 0xA0:  # version [0] EXPLICIT
        tbs = tbs[1:]
    if len(tbs) < 3 or tbs[0][0] != 0x02 or tbs[2][0] != 0x30:
        raise _NotHandled
    if der[tbs[0][1] : tbs[0][3]] != der[sid[1][1] : sid[1][3]]:
        raise _NotHandled  # serial
    if der[tbs[2][1] : tbs[2][3]] != der[sid[0][1] : sid[0][3]]:
        raise _NotHandled  # issuer
    algorithm = _children(der, fields[2][2], fields[2][3])
    if len(algorithm) not in (1, 2) or algorithm[0][0] != 0x06:
        raise _NotHandled
    digest_name = _DIGESTS.get(der[algorithm[0][2] : algorithm[0][3]])
    if digest_name is None:
        raise _NotHandled
    _, attrs_start, attrs_contents, attrs_end = fields[3]
    if attrs_contents == attrs_end:
        raise _NotHandled  # no signed attributes: refused by the general reader
    return SignedFields(
        certificate=der[cert_start:cert_end],
        digest_name=digest_name,
        signed_der=b"\x31" + der[attrs_start + 1 : attrs_end],  # [0] IMPLICIT -> SET OF
        signature=der[fields[5][2] : fields[5][3]],
        attributes=_attributes(der, attrs_contents, attrs_end),
        content=content,
    )


def read_signed(der: bytes) -> SignedFields | None:
    """The fields of ``der`` if it has the usual shape, else None."""
    try:
        return _read(der)
    except (_NotHandled, IndexError):
        return None

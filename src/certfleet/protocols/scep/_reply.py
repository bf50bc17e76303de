"""Building the server's CertRep (RFC 8894 section 3.3.2), signed by the RA with SHA-256.

cryptography's ``PKCS7SignatureBuilder`` signs only with its own fixed authenticated
attributes (content type, signing time, S/MIME capabilities): it cannot add SCEP's
messageType, pkiStatus, failInfo, nonces and transactionID, which must be signed. So
asn1crypto encodes the attributes, cryptography makes the signature, and the SignedData is
assembled from DER parts encoded once per RA.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Sequence

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from certfleet.protocols.scep._attributes import (
    FAIL_INFO,
    MESSAGE_TYPE,
    PKI_STATUS,
    RECIPIENT_NONCE,
    SENDER_NONCE,
    TRANSACTION_ID,
    MessageType,
    PkiStatus,
)
from certfleet.protocols.scep._request import ReplyTo
from certfleet.protocols.scep.errors import FailInfo

__all__ = ["RaSigner", "cert_rep", "signed_attributes", "signed_content"]


class RaSigner:
    """The RA certificate and key that sign every CertRep; ``extra`` certificates (the CA
    chain) travel in the SignedData so clients can build the path (certmonger verifies a
    reply only when it finds the CA)."""

    def __init__(
        self, certificate: x509.Certificate, key: rsa.RSAPrivateKey, extra: Sequence[x509.Certificate]
    ) -> None:
        self.certificate = certificate
        self.key = key
        self.chain = (certificate, *extra)  # what GetCACert returns: the RA first
        # Everything but the attributes and the signature is the same in every reply:
        # encoded once here, so a reply costs one small asn1crypto encoding and a signature
        # (re-encoding the three certificates each time was most of a CertRep's cost).
        ders = sorted(c.public_bytes(serialization.Encoding.DER) for c in self.chain)  # DER SET OF order
        self._certificates = _tlv(0xA0, b"".join(ders))  # [0] IMPLICIT CertificateSet
        sid = cms.SignerIdentifier(
            {
                "issuer_and_serial_number": {
                    "issuer": asn1_x509.Name.load(certificate.issuer.public_bytes()),
                    "serial_number": certificate.serial_number,
                }
            }
        )
        self._sid = bytes(sid.dump())

    def sign(self, content: bytes | None, attributes: list[bytes], now: dt.datetime) -> bytes:
        """A SignedData (RFC 5652 section 5.1) over ``content`` (absent when None) with these
        SCEP attributes, assembled from its DER parts."""
        signed_attrs = signed_attributes(content, attributes, now)
        signature = self.key.sign(signed_attrs, padding.PKCS1v15(), hashes.SHA256())
        signer_info = _tlv(
            0x30,
            _VERSION_1 + self._sid + _SHA256 + b"\xa0" + signed_attrs[1:] + _RSA + _tlv(0x04, signature),
        )
        encap = _OID_DATA if content is None else _OID_DATA + _tlv(0xA0, _tlv(0x04, content))
        signed = _tlv(
            0x30,
            _VERSION_1
            + _tlv(0x31, _SHA256)
            + _tlv(0x30, encap)
            + self._certificates
            + _tlv(0x31, signer_info),
        )
        return _tlv(0x30, _OID_SIGNED_DATA + _tlv(0xA0, signed))


def _tlv(tag: int, body: bytes) -> bytes:
    """One DER element (X.690 section 8.1: definite length, short or long form)."""
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + body


_VERSION_1 = bytes(core.Integer(1).dump())
_SHA256 = bytes(algos.DigestAlgorithm({"algorithm": "sha256"}).dump())
_RSA = bytes(algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}).dump())
_OID_DATA = bytes(cms.ContentType("data").dump())
_OID_SIGNED_DATA = bytes(cms.ContentType("signed_data").dump())


def _attribute(oid: bytes, value: bytes) -> bytes:
    """Attribute ::= SEQUENCE { attrType OID, attrValues SET OF value } (RFC 5652 section
    5.3), with one value, from DER parts: asn1crypto built and re-encoded these objects at
    about 10 ms of CPU per CertRep, more than the RSA signature."""
    return _tlv(0x30, oid + _tlv(0x31, value))


def _printable(oid: bytes, value: str) -> bytes:
    return _attribute(oid, _tlv(0x13, value.encode("latin-1")))  # as asn1crypto encodes it


def _octets(oid: bytes, value: bytes) -> bytes:
    return _attribute(oid, _tlv(0x04, value))


def signed_attributes(content: bytes | None, attributes: list[bytes], now: dt.datetime) -> bytes:
    """The DER SET OF signed attributes (tag 0x31; the SignerInfo carries it as [0]): content
    type, signing time (UTCTime, RFC 5652 section 11.3), message digest and the SCEP ones,
    sorted by encoding as DER orders a SET OF (X.690 section 11.6): the bytes signed are the
    bytes a client re-encodes to verify."""
    signing_time = now.astimezone(dt.UTC).strftime("%y%m%d%H%M%SZ").encode("ascii")
    parts = [
        _CONTENT_TYPE_DATA,
        _attribute(_OID_SIGNING_TIME, _tlv(0x17, signing_time)),
        _octets(_OID_MESSAGE_DIGEST, hashlib.sha256(content or b"").digest()),
        *attributes,
    ]
    return _tlv(0x31, b"".join(sorted(parts)))


_CONTENT_TYPE_DATA = _attribute(bytes(cms.CMSAttributeType("content_type").dump()), _OID_DATA)
_OID_SIGNING_TIME = bytes(cms.CMSAttributeType("signing_time").dump())
_OID_MESSAGE_DIGEST = bytes(cms.CMSAttributeType("message_digest").dump())
_OID_TRANSACTION_ID = bytes(cms.CMSAttributeType(TRANSACTION_ID).dump())
_OID_MESSAGE_TYPE = bytes(cms.CMSAttributeType(MESSAGE_TYPE).dump())
_OID_PKI_STATUS = bytes(cms.CMSAttributeType(PKI_STATUS).dump())
_OID_FAIL_INFO = bytes(cms.CMSAttributeType(FAIL_INFO).dump())
_OID_SENDER_NONCE = bytes(cms.CMSAttributeType(SENDER_NONCE).dump())
_OID_RECIPIENT_NONCE = bytes(cms.CMSAttributeType(RECIPIENT_NONCE).dump())


def cert_rep(
    signer: RaSigner,
    reply_to: ReplyTo,
    status: PkiStatus,
    now: dt.datetime,
    *,
    envelope: bytes | None = None,
    fail_info: FailInfo | None = None,
) -> bytes:
    """A CertRep: SUCCESS carries ``envelope`` (already sealed to the client); FAILURE its
    ``fail_info``; PENDING nothing else (RFC 8894 section 3.3.2)."""
    attributes = [
        _printable(_OID_TRANSACTION_ID, reply_to.transaction_id),
        _printable(_OID_MESSAGE_TYPE, MessageType.CERT_REP.value),
        _printable(_OID_PKI_STATUS, status.value),
        _octets(_OID_SENDER_NONCE, os.urandom(16)),
        _octets(_OID_RECIPIENT_NONCE, reply_to.sender_nonce),
    ]
    if status is PkiStatus.FAILURE:
        attributes.append(_printable(_OID_FAIL_INFO, (fail_info or FailInfo.BAD_REQUEST).value))
    # FAILURE and PENDING carry no pkcsPKIEnvelope, but an empty eContent rather than none:
    # OpenSSL's PKCS7_verify (certmonger) takes an absent one for a detached signature and
    # refuses the reply ("no content").
    return signer.sign(envelope if status is PkiStatus.SUCCESS and envelope else b"", attributes, now)


def signed_content(signer: RaSigner, content: bytes, now: dt.datetime) -> bytes:
    """GetNextCACert's answer (RFC 8894 section 4.7.1): certificates signed by the RA."""
    return signer.sign(content, [], now)

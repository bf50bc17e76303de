"""Building the server's CertRep (RFC 8894 section 3.3.2), signed by the RA with SHA-256.

cryptography's ``PKCS7SignatureBuilder`` signs only with its own fixed authenticated
attributes (content type, signing time, S/MIME capabilities): it cannot add SCEP's
messageType, pkiStatus, failInfo, nonces and transactionID, which must be signed. So
asn1crypto assembles the SignedData and cryptography makes the signature.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Sequence

from asn1crypto import cms, core
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

__all__ = ["RaSigner", "cert_rep", "signed_content"]


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
        self._certificates = [
            asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
            for c in (certificate, *extra)
        ]
        self._sid = cms.SignerIdentifier(
            {
                "issuer_and_serial_number": {
                    "issuer": asn1_x509.Name.load(certificate.issuer.public_bytes()),
                    "serial_number": certificate.serial_number,
                }
            }
        )

    def sign(self, content: bytes | None, attributes: list[dict[str, object]], now: dt.datetime) -> bytes:
        """A SignedData over ``content`` (absent when None) with these SCEP attributes."""
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["data"]},
                {"type": "signing_time", "values": [cms.Time({"utc_time": now})]},
                {"type": "message_digest", "values": [hashlib.sha256(content or b"").digest()]},
                *[cms.CMSAttribute({"type": a["type"], "values": [a["value"]]}) for a in attributes],
            ]
        )
        signature = self.key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
        encap: dict[str, object] = {"content_type": "data"}
        if content is not None:
            encap["content"] = content
        signed = cms.SignedData(
            {
                "version": "v1",
                "digest_algorithms": [{"algorithm": "sha256"}],
                "encap_content_info": encap,
                "certificates": self._certificates,
                "signer_infos": [
                    {
                        "version": "v1",
                        "sid": self._sid,
                        "digest_algorithm": {"algorithm": "sha256"},
                        "signed_attrs": signed_attrs,
                        "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
                        "signature": signature,
                    }
                ],
            }
        )
        return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


def _printable(oid: str, value: str) -> dict[str, object]:
    return {"type": cms.CMSAttributeType(oid), "value": core.PrintableString(value)}


def _octets(oid: str, value: bytes) -> dict[str, object]:
    return {"type": cms.CMSAttributeType(oid), "value": core.OctetString(value)}


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
        _printable(TRANSACTION_ID, reply_to.transaction_id),
        _printable(MESSAGE_TYPE, MessageType.CERT_REP.value),
        _printable(PKI_STATUS, status.value),
        _octets(SENDER_NONCE, os.urandom(16)),
        _octets(RECIPIENT_NONCE, reply_to.sender_nonce),
    ]
    if status is PkiStatus.FAILURE:
        attributes.append(_printable(FAIL_INFO, (fail_info or FailInfo.BAD_REQUEST).value))
    # FAILURE and PENDING carry no pkcsPKIEnvelope, but an empty eContent rather than none:
    # OpenSSL's PKCS7_verify (certmonger) takes an absent one for a detached signature and
    # refuses the reply ("no content").
    return signer.sign(envelope if status is PkiStatus.SUCCESS and envelope else b"", attributes, now)


def signed_content(signer: RaSigner, content: bytes, now: dt.datetime) -> bytes:
    """GetNextCACert's answer (RFC 8894 section 4.7.1): certificates signed by the RA."""
    return signer.sign(content, [], now)

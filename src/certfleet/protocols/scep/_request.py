"""Reading a client's pkiMessage (RFC 8894 section 3): the CMS SignedData around it, its
signature, its SCEP attributes and the EnvelopedData inside.

cryptography verifies signatures and decrypts, but it has no reader for a SignedData's
signer infos and authenticated attributes (``load_der_pkcs7_certificates`` returns only the
certificates), so asn1crypto parses the CMS structure and cryptography does every
cryptographic operation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from certfleet.protocols.scep._attributes import (
    MESSAGE_TYPE,
    SENDER_NONCE,
    TRANSACTION_ID,
    MessageType,
)
from certfleet.protocols.scep.errors import FailInfo, MalformedMessage, ScepFailure

__all__ = ["ParsedMessage", "PkiRequest", "ReplyTo", "parse_pki_message"]

# RFC 8894 section 3.2.1.5: nonces are 16 bytes; some clients send more, none fewer than 8.
_MIN_NONCE = 8
_MAX_NONCE = 64
_MAX_TRANSACTION_ID = 128
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,  # RFC 8894 section 3.5.2: still what older clients sign with
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class PkiRequest:
    """A signed pkiMessage whose signature checked out. ``envelope`` is still encrypted."""

    message_type: MessageType
    transaction_id: str
    sender_nonce: bytes
    signer: x509.Certificate
    envelope: bytes  # the pkcsPKIEnvelope: ContentInfo(EnvelopedData), DER
    signing_time: dt.datetime | None


@dataclass(frozen=True)
class ReplyTo:
    """What a CertRep echoes (RFC 8894 section 3.3.2): the transaction, the client's nonce
    as recipientNonce, and the certificate its envelope is encrypted to."""

    transaction_id: str
    sender_nonce: bytes
    signer: x509.Certificate


@dataclass(frozen=True)
class ParsedMessage:
    """Either a verified request or the failure to answer; both carry where to reply."""

    reply_to: ReplyTo
    request: PkiRequest | None
    failure: ScepFailure | None


def _attribute(attrs: dict[str, list[Any]], oid: str) -> Any | None:
    values = attrs.get(oid)
    if not values:
        return None
    if len(values) != 1:
        raise MalformedMessage(f"attribute {oid} must have exactly one value")
    return values[0]


def _text(value: Any, oid: str) -> str:
    parsed = value.parsed if isinstance(value, core.Any) else value
    if isinstance(parsed, core.AbstractString):
        return str(parsed.native)
    raise MalformedMessage(f"attribute {oid} is not a string")


def _signed_attributes(signer_info: cms.SignerInfo) -> dict[str, list[Any]]:
    attrs: dict[str, list[Any]] = {}
    for attr in signer_info["signed_attrs"]:
        attrs.setdefault(attr["type"].dotted, []).extend(list(attr["values"]))
    return attrs


def _signer_certificate(signed: cms.SignedData, signer_info: cms.SignerInfo) -> x509.Certificate:
    sid = signer_info["sid"]
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            # The serial first, then the issuer's encoding: clients copy both from the
            # certificate they sign with, and asn1crypto's RFC 5280 name comparison (which
            # normalises every attribute) costs milliseconds; it stays for a re-encoded name.
            issuer = sid.chosen["issuer"]
            matches = cert.serial_number == sid.chosen["serial_number"].native and (
                cert.issuer.dump() == issuer.dump() or cert.issuer == issuer
            )
        else:
            matches = cert.key_identifier == sid.chosen.native
        if matches:
            try:
                return x509.load_der_x509_certificate(cert.dump())
            except ValueError as exc:
                raise MalformedMessage("the signer certificate cannot be parsed") from exc
    raise MalformedMessage("the message does not carry its signer's certificate")


def _verify(
    signer: x509.Certificate, signer_info: cms.SignerInfo, attrs: dict[str, list[Any]], content: bytes
) -> None:
    """RFC 5652 section 5.4: the signature covers the DER SET OF the signed attributes, whose
    messageDigest must be the digest of the content."""
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    hash_type = _HASHES.get(digest_name)
    if hash_type is None:
        raise ScepFailure(FailInfo.BAD_ALG, f"unsupported digest algorithm {digest_name}")
    digest = _attribute(attrs, "1.2.840.113549.1.9.4")
    if digest is None:
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "no messageDigest attribute")
    hasher = hashes.Hash(hash_type())
    hasher.update(content)
    expected = hasher.finalize()
    if bytes(digest.parsed.native if isinstance(digest, core.Any) else digest.native) != expected:
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "messageDigest does not match the content")
    # The [0] IMPLICIT tag is replaced by the universal SET tag before verifying.
    signed_der = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    signature = signer_info["signature"].native
    key = signer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed_der, padding.PKCS1v15(), hash_type())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed_der, ec.ECDSA(hash_type()))
        else:
            raise ScepFailure(FailInfo.BAD_ALG, "the signer's key is neither RSA nor ECDSA")
    except InvalidSignature:
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "the signature does not verify") from None
    except UnsupportedAlgorithm as exc:
        raise ScepFailure(FailInfo.BAD_ALG, f"unsupported signature: {exc}") from None


def parse_pki_message(der: bytes) -> ParsedMessage:
    """Parse and verify ``der``: the request, or the failure to answer it with; raises
    :class:`MalformedMessage` when not even those can be read."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise MalformedMessage("a pkiMessage is a CMS SignedData")
        signed = info["content"]
        signer_infos = list(signed["signer_infos"])
        if len(signer_infos) != 1:
            raise MalformedMessage("a pkiMessage has exactly one signer")
        signer_info = signer_infos[0]
        if not signer_info["signed_attrs"]:
            raise MalformedMessage("a pkiMessage carries signed attributes")
        attrs = _signed_attributes(signer_info)
        signer = _signer_certificate(signed, signer_info)
        transaction = _attribute(attrs, TRANSACTION_ID)
        nonce = _attribute(attrs, SENDER_NONCE)
        kind = _attribute(attrs, MESSAGE_TYPE)
        if transaction is None or nonce is None or kind is None:
            raise MalformedMessage("transactionID, senderNonce and messageType are required")
        transaction_id = _text(transaction, TRANSACTION_ID)
        nonce_value = nonce.parsed if isinstance(nonce, core.Any) else nonce
        sender_nonce = bytes(core.OctetString.load(nonce_value.dump()).native)
        kind_text = _text(kind, MESSAGE_TYPE)
        content = signed["encap_content_info"]["content"]
        envelope_value = content.native
        envelope = bytes(envelope_value) if envelope_value is not None else b""
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedMessage(f"not a SCEP pkiMessage: {exc}") from None
    if not (0 < len(transaction_id) <= _MAX_TRANSACTION_ID) or not (
        _MIN_NONCE <= len(sender_nonce) <= _MAX_NONCE
    ):
        raise MalformedMessage("transactionID or senderNonce of an impossible length")
    reply_to = ReplyTo(transaction_id, sender_nonce, signer)
    try:
        _verify(signer, signer_info, attrs, envelope)
        try:
            message_type = MessageType(kind_text)
        except ValueError:
            raise ScepFailure(FailInfo.BAD_REQUEST, f"unsupported messageType {kind_text!r}") from None
        if message_type is MessageType.CERT_REP:
            raise ScepFailure(FailInfo.BAD_REQUEST, "a CertRep is the server's message")
        signing_time = _attribute(attrs, "1.2.840.113549.1.9.5")
        when = None
        if signing_time is not None:
            parsed = signing_time.parsed if isinstance(signing_time, core.Any) else signing_time
            when = parsed.chosen.native if isinstance(parsed, cms.Time) else parsed.native
    except ScepFailure as failure:
        return ParsedMessage(reply_to, None, failure)
    except (ValueError, TypeError) as exc:
        return ParsedMessage(reply_to, None, ScepFailure(FailInfo.BAD_REQUEST, f"malformed attribute: {exc}"))
    request = PkiRequest(message_type, transaction_id, sender_nonce, signer, envelope, when)
    return ParsedMessage(reply_to, request, None)

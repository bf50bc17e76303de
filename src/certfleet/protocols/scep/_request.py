"""Reading a client's pkiMessage (RFC 8894 section 3): the CMS SignedData around it, its
signature, its SCEP attributes and the EnvelopedData inside.

cryptography verifies signatures and decrypts, but it has no reader for a SignedData's
signer infos and authenticated attributes (``load_der_pkcs7_certificates`` returns only the
certificates), so asn1crypto parses the CMS structure and cryptography does every
cryptographic operation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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
from certfleet.protocols.scep._der import (
    MESSAGE_DIGEST,
    SIGNING_TIME,
    SignedFields,
    oid_contents,
    read_signed,
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


_K = TypeVar("_K", str, bytes)
_V = TypeVar("_V")


def _attribute(attrs: dict[_K, list[_V]], key: _K, oid: str) -> _V | None:
    values = attrs.get(key)
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
            return _load_signer(cert.dump())
    raise MalformedMessage("the message does not carry its signer's certificate")


@dataclass(frozen=True)
class _Signed:
    """What the signature check and the reply need of a SignedData, from either reader.
    The messageDigest and signingTime are read when checked (a bad one is a failure with
    a reply, not a malformed message)."""

    signer: x509.Certificate
    transaction_id: str
    sender_nonce: bytes
    kind_text: str
    envelope: bytes
    digest_name: Callable[[], str]  # read when checked, as the two below
    signed_der: bytes  # the DER SET OF signed attributes, as signed
    signature: bytes
    message_digest: Callable[[], bytes | None]
    signing_time: Callable[[], dt.datetime | None]


def _verify(signed: _Signed) -> None:
    """RFC 5652 section 5.4: the signature covers the DER SET OF the signed attributes, whose
    messageDigest must be the digest of the content."""
    digest_name = signed.digest_name()
    hash_type = _HASHES.get(digest_name)
    if hash_type is None:
        raise ScepFailure(FailInfo.BAD_ALG, f"unsupported digest algorithm {digest_name}")
    digest = signed.message_digest()
    if digest is None:
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "no messageDigest attribute")
    hasher = hashes.Hash(hash_type())
    hasher.update(signed.envelope)
    if digest != hasher.finalize():
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "messageDigest does not match the content")
    try:
        key = signed.signer.public_key()  # a key type cryptography does not know: badAlg
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signed.signature, signed.signed_der, padding.PKCS1v15(), hash_type())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signed.signature, signed.signed_der, ec.ECDSA(hash_type()))
        else:
            raise ScepFailure(FailInfo.BAD_ALG, "the signer's key is neither RSA nor ECDSA")
    except InvalidSignature:
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "the signature does not verify") from None
    except UnsupportedAlgorithm as exc:
        raise ScepFailure(FailInfo.BAD_ALG, f"unsupported signature: {exc}") from None


def _load_signer(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise MalformedMessage("the signer certificate cannot be parsed") from exc


def _required(attrs: dict[_K, list[_V]], transaction: _K, nonce: _K, kind: _K) -> tuple[_V, _V, _V]:
    found = (
        _attribute(attrs, transaction, TRANSACTION_ID),
        _attribute(attrs, nonce, SENDER_NONCE),
        _attribute(attrs, kind, MESSAGE_TYPE),
    )
    if found[0] is None or found[1] is None or found[2] is None:
        raise MalformedMessage("transactionID, senderNonce and messageType are required")
    return found[0], found[1], found[2]


_TRANSACTION_ID = oid_contents(TRANSACTION_ID)
_SENDER_NONCE = oid_contents(SENDER_NONCE)
_MESSAGE_TYPE = oid_contents(MESSAGE_TYPE)


def _read_fast(fields: SignedFields) -> _Signed:
    """The usual shape, read by :mod:`._der` (whose values have the types checked here)."""
    attrs = fields.attributes
    signer = _load_signer(fields.certificate)
    transaction, nonce, kind = _required(attrs, _TRANSACTION_ID, _SENDER_NONCE, _MESSAGE_TYPE)

    def message_digest() -> bytes | None:
        value = _attribute(attrs, MESSAGE_DIGEST, "1.2.840.113549.1.9.4")
        return None if value is None else value.contents

    def signing_time() -> dt.datetime | None:
        value = _attribute(attrs, SIGNING_TIME, "1.2.840.113549.1.9.5")
        return None if value is None else cms.Time.load(value.element).chosen.native

    return _Signed(
        signer,
        transaction.contents.decode("latin-1"),  # PrintableString, as asn1crypto decodes it
        nonce.contents,
        kind.contents.decode("latin-1"),
        fields.content,
        lambda: fields.digest_name,
        fields.signed_der,
        fields.signature,
        message_digest,
        signing_time,
    )


def _read_general(der: bytes) -> _Signed:
    """Any other shape (BER, a subject key identifier, other string types...): asn1crypto."""
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
    transaction, nonce, kind = _required(attrs, TRANSACTION_ID, SENDER_NONCE, MESSAGE_TYPE)
    transaction_id = _text(transaction, TRANSACTION_ID)
    nonce_value = nonce.parsed if isinstance(nonce, core.Any) else nonce
    sender_nonce = bytes(core.OctetString.load(nonce_value.dump()).native)
    kind_text = _text(kind, MESSAGE_TYPE)
    content = signed["encap_content_info"]["content"]
    envelope_value = content.native
    envelope = bytes(envelope_value) if envelope_value is not None else b""

    def message_digest() -> bytes | None:
        digest = _attribute(attrs, "1.2.840.113549.1.9.4", "1.2.840.113549.1.9.4")
        if digest is None:
            return None
        return bytes(digest.parsed.native if isinstance(digest, core.Any) else digest.native)

    def signing_time() -> dt.datetime | None:
        value = _attribute(attrs, "1.2.840.113549.1.9.5", "1.2.840.113549.1.9.5")
        if value is None:
            return None
        parsed = value.parsed if isinstance(value, core.Any) else value
        when: dt.datetime = parsed.chosen.native if isinstance(parsed, cms.Time) else parsed.native
        return when

    return _Signed(
        signer,
        transaction_id,
        sender_nonce,
        kind_text,
        envelope,
        lambda: str(signer_info["digest_algorithm"]["algorithm"].native),
        # The [0] IMPLICIT tag is replaced by the universal SET tag before verifying.
        b"\x31" + signer_info["signed_attrs"].dump()[1:],
        signer_info["signature"].native,
        message_digest,
        signing_time,
    )


def parse_pki_message(der: bytes) -> ParsedMessage:
    """Parse and verify ``der``: the request, or the failure to answer it with; raises
    :class:`MalformedMessage` when not even those can be read."""
    try:
        fields = read_signed(der)
        signed = _read_general(der) if fields is None else _read_fast(fields)
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedMessage(f"not a SCEP pkiMessage: {exc}") from None
    transaction_id, sender_nonce = signed.transaction_id, signed.sender_nonce
    if not (0 < len(transaction_id) <= _MAX_TRANSACTION_ID) or not (
        _MIN_NONCE <= len(sender_nonce) <= _MAX_NONCE
    ):
        raise MalformedMessage("transactionID or senderNonce of an impossible length")
    reply_to = ReplyTo(transaction_id, sender_nonce, signed.signer)
    try:
        _verify(signed)
        try:
            message_type = MessageType(signed.kind_text)
        except ValueError:
            raise ScepFailure(FailInfo.BAD_REQUEST, f"unsupported messageType {signed.kind_text!r}") from None
        if message_type is MessageType.CERT_REP:
            raise ScepFailure(FailInfo.BAD_REQUEST, "a CertRep is the server's message")
        when = signed.signing_time()
    except ScepFailure as failure:
        return ParsedMessage(reply_to, None, failure)
    except (ValueError, TypeError) as exc:
        return ParsedMessage(reply_to, None, ScepFailure(FailInfo.BAD_REQUEST, f"malformed attribute: {exc}"))
    request = PkiRequest(message_type, transaction_id, sender_nonce, signed.signer, signed.envelope, when)
    return ParsedMessage(reply_to, request, None)

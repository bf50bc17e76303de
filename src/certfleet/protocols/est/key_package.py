"""serverkeygen with additional encryption (RFC 7030 sections 4.4.1.2 and 4.4.2): the key as
an AsymmetricKeyPackage (RFC 5958), in a CMS SignedData signed by the EST server, in a CMS
EnvelopedData for the client's RSA key (key transport, ``ktri``, the recipient named by the
subjectKeyIdentifier the client gave in its AsymmetricDecryptKeyIdentifier attribute).

Only that case is offered: a symmetric DecryptKeyIdentifier names a key this server does not
share with anyone, and key agreement (``kari``, for EC recipients) is not implemented; both
are refused with a precise 400 rather than answered in another form.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from asn1crypto import algos, cms, core, keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import ObjectIdentifier

from certfleet.protocols.est.errors import MalformedEstMessage

__all__ = [
    "SERVER_GENERATED_KEY",
    "EnvelopeRecipient",
    "Signer",
    "encrypted_key_package",
    "requested_recipient",
]

SERVER_GENERATED_KEY = "application/pkcs7-mime; smime-type=server-generated-key"
_ASYMMETRIC_DECRYPT_KEY_ID = ObjectIdentifier("1.2.840.113549.1.9.16.2.54")  # RFC 7030 4.4.1.2
_DECRYPT_KEY_ID = ObjectIdentifier("1.2.840.113549.1.9.16.2.37")  # RFC 7030 4.4.1.1
_ID_CT_KP_AKEYPACKAGE = "2.16.840.1.101.2.1.2.78.5"  # RFC 5958 section 3


class _AsymmetricKeyPackage(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    """``AsymmetricKeyPackage ::= SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey`` (RFC 5958);
    a version 1 OneAsymmetricKey is a PKCS#8 PrivateKeyInfo."""

    _child_spec = keys.PrivateKeyInfo


@dataclass(frozen=True)
class Signer:
    """Who signs the key package: the EST server (its TLS listener certificate and key)."""

    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes
    chain: tuple[x509.Certificate, ...] = ()  # CAs above it, sent along for verification


@dataclass(frozen=True)
class EnvelopeRecipient:
    """The client's RSA certificate the key is encrypted to, and the identifier it asked for."""

    certificate: x509.Certificate
    key_identifier: bytes


def requested_recipient(
    csr: x509.CertificateSigningRequest, client_certificate: x509.Certificate | None
) -> EnvelopeRecipient | None:
    """The recipient the CSR asks the key to be encrypted to, or None if it asks for no
    encryption beyond TLS. The identified key must be the TLS client certificate's (the one
    certificate of the client the server knows for certain), and an RSA key."""
    for attribute in csr.attributes:
        if attribute.oid == _DECRYPT_KEY_ID:
            raise MalformedEstMessage(
                "the CSR asks for the key to be encrypted with a symmetric DecryptKeyIdentifier "
                "(RFC 7030 section 4.4.1.1): this server shares no symmetric key with clients; "
                "use an AsymmetricDecryptKeyIdentifier naming your TLS client certificate's key"
            )
        if attribute.oid != _ASYMMETRIC_DECRYPT_KEY_ID:
            continue
        if client_certificate is None:
            raise MalformedEstMessage(
                "the CSR asks for the key to be encrypted to an AsymmetricDecryptKeyIdentifier, "
                "but no TLS client certificate was presented whose key it could name"
            )
        if attribute.value != _subject_key_identifier(client_certificate):
            raise MalformedEstMessage(
                "the CSR's AsymmetricDecryptKeyIdentifier is not the subjectKeyIdentifier of "
                "the TLS client certificate"
            )
        if not isinstance(client_certificate.public_key(), rsa.RSAPublicKey):
            raise MalformedEstMessage(
                "the key named by AsymmetricDecryptKeyIdentifier is not RSA: only key transport "
                "(RSA) recipients are supported, not key agreement"
            )
        return EnvelopeRecipient(client_certificate, attribute.value)
    return None


def _subject_key_identifier(certificate: x509.Certificate) -> bytes:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def encrypted_key_package(
    private_key: CertificateIssuerPrivateKeyTypes, recipient: EnvelopeRecipient, signer: Signer
) -> bytes:
    """ContentInfo(EnvelopedData(SignedData(AsymmetricKeyPackage))), DER (RFC 7030 4.4.2)."""
    pkcs8 = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    package = _AsymmetricKeyPackage([keys.PrivateKeyInfo.load(pkcs8)]).dump()
    return _enveloped(_signed(package, signer), recipient)


def _signed(package: bytes, signer: Signer) -> bytes:
    signed_attributes = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [_ID_CT_KP_AKEYPACKAGE]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(package).digest()]}),
        ]
    )
    # RFC 5652 section 5.4: the signature covers the DER of the attributes as a SET OF.
    to_sign = signed_attributes.dump()
    key = signer.private_key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature, algorithm = key.sign(to_sign, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, asymmetric_padding.PKCS1v15(), hashes.SHA256())
        algorithm = "sha256_rsa"
    else:
        raise MalformedEstMessage("the EST server's key cannot sign a CMS SignedData")
    certificate, *chain = (
        asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
        for c in (signer.certificate, *signer.chain)
    )
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
                    )
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attributes,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": algorithm}),
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v3",  # eContentType is not id-data (RFC 5652 section 5.1)
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": _ID_CT_KP_AKEYPACKAGE, "content": package},
            "certificates": [certificate, *chain],
            "signer_infos": [signer_info],
        }
    )
    return bytes(signed_data.dump())


def _enveloped(content: bytes, recipient: EnvelopeRecipient) -> bytes:
    content_key, iv = os.urandom(32), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    public_key = recipient.certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)  # requested_recipient admits RSA only
    recipient_info = cms.KeyTransRecipientInfo(
        {
            "version": "v2",  # rid is a subjectKeyIdentifier (RFC 5652 section 6.2.1)
            "rid": cms.RecipientIdentifier({"subject_key_identifier": recipient.key_identifier}),
            "key_encryption_algorithm": cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_pkcs1v15"}),
            "encrypted_key": public_key.encrypt(content_key, asymmetric_padding.PKCS1v15()),
        }
    )
    enveloped = cms.EnvelopedData(
        {
            "version": "v2",
            "recipient_infos": [cms.RecipientInfo({"ktri": recipient_info})],
            "encrypted_content_info": {
                "content_type": "signed_data",
                "content_encryption_algorithm": {"algorithm": "aes256_cbc", "parameters": iv},
                "encrypted_content": ciphertext,
            },
        }
    )
    return bytes(cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump())

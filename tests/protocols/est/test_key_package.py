"""serverkeygen with additional encryption (RFC 7030 4.4.1.2, 4.4.2): EnvelopedData (ktri, AES-256-CBC)
around a SignedData around an AsymmetricKeyPackage, opened here with the recipient's RSA key
as any CMS implementation would (``openssl cms -decrypt`` does in the integration test)."""

from __future__ import annotations

import pytest
from asn1crypto import cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID, ObjectIdentifier

from certfleet.protocols.est import (
    EnvelopeRecipient,
    MalformedEstMessage,
    Signer,
    encrypted_key_package,
    requested_recipient,
)
from tests.protocols.est.test_messages import self_signed

ASYMMETRIC_DECRYPT_KEY_ID = ObjectIdentifier("1.2.840.113549.1.9.16.2.54")
DECRYPT_KEY_ID = ObjectIdentifier("1.2.840.113549.1.9.16.2.37")


def certificate(key: CertificateIssuerPrivateKeyTypes, name: str) -> x509.Certificate:
    return self_signed(name, key)


def key_id(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def open_key_package(
    der: bytes, recipient_key: rsa.RSAPrivateKey
) -> tuple[PrivateKeyTypes, x509.Certificate]:
    """Decrypt the EnvelopedData, check the SignedData's signature, return the key and signer."""
    enveloped = cms.ContentInfo.load(der)["content"]
    (info,) = enveloped["recipient_infos"]
    content_key = recipient_key.decrypt(info.chosen["encrypted_key"].native, asymmetric_padding.PKCS1v15())
    encrypted = enveloped["encrypted_content_info"]
    assert encrypted["content_type"].native == "signed_data"
    assert encrypted["content_encryption_algorithm"]["algorithm"].native == "aes256_cbc"
    iv = encrypted["content_encryption_algorithm"]["parameters"].native
    decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(encrypted["encrypted_content"].native) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    signed = cms.SignedData.load(unpadder.update(padded) + unpadder.finalize())
    content = signed["encap_content_info"]
    assert content["content_type"].dotted == "2.16.840.1.101.2.1.2.78.5"  # id-ct-KP-aKeyPackage
    (signer_info,) = signed["signer_infos"]
    serial = signer_info["sid"].chosen["serial_number"].native  # the certificates are a SET OF
    (signer,) = [
        x509.load_der_x509_certificate(c.chosen.dump())
        for c in signed["certificates"]
        if c.chosen.serial_number == serial
    ]
    signer_key = signer.public_key()
    assert isinstance(signer_key, ec.EllipticCurvePublicKey)
    # RFC 5652 section 5.4: signed over the attributes' DER as a SET OF, not as [0]
    signed_attributes = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    signer_key.verify(signer_info["signature"].native, signed_attributes, ec.ECDSA(hashes.SHA256()))
    package = core.Sequence.load(content["content"].native)
    return serialization.load_der_private_key(package[0].dump(), None), signer


def test_the_package_opens_with_the_recipients_key_and_holds_the_generated_key() -> None:
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = certificate(client_key, "client")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate(server_key, "est server")
    generated = ec.generate_private_key(ec.SECP256R1())
    der = encrypted_key_package(
        generated, EnvelopeRecipient(client, key_id(client)), Signer(server, server_key)
    )
    opened, signer = open_key_package(der, client_key)
    assert opened.public_key() == generated.public_key()
    assert signer == server
    pkcs8 = generated.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert pkcs8 not in der  # encrypted, not merely wrapped


def csr_with(oid: ObjectIdentifier, value: bytes) -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev.example.test")]))
        .add_attribute(oid, value, _tag=x509.name._ASN1Type.OctetString)
        .sign(key, hashes.SHA256())
    )


def test_a_csr_naming_the_tls_client_certificates_rsa_key_gets_it_as_recipient() -> None:
    client = certificate(rsa.generate_private_key(public_exponent=65537, key_size=2048), "client")
    recipient = requested_recipient(csr_with(ASYMMETRIC_DECRYPT_KEY_ID, key_id(client)), client)
    assert recipient == EnvelopeRecipient(client, key_id(client))


def test_a_csr_without_the_attribute_asks_for_no_encryption() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev.example.test")]))
        .sign(key, hashes.SHA256())
    )
    assert requested_recipient(csr, None) is None


@pytest.mark.parametrize(
    ("oid", "client_kind", "identifier", "detail"),
    [
        (DECRYPT_KEY_ID, "rsa", "right", "symmetric DecryptKeyIdentifier"),
        (ASYMMETRIC_DECRYPT_KEY_ID, None, "right", "no TLS client certificate"),
        (ASYMMETRIC_DECRYPT_KEY_ID, "rsa", "wrong", "not the subjectKeyIdentifier"),
        (ASYMMETRIC_DECRYPT_KEY_ID, "ec", "right", "not RSA"),
    ],
)
def test_requests_that_cannot_be_honoured_are_refused(
    oid: ObjectIdentifier, client_kind: str | None, identifier: str, detail: str
) -> None:
    key: CertificateIssuerPrivateKeyTypes = (
        ec.generate_private_key(ec.SECP256R1())
        if client_kind == "ec"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    client = certificate(key, "client")
    value = key_id(client) if identifier == "right" else b"\x01" * 20
    with pytest.raises(MalformedEstMessage, match=detail):
        requested_recipient(csr_with(oid, value), client if client_kind else None)

"""A SCEP client for tests, built from asn1crypto and cryptography only (none of certfleet's
SCEP code): pkiMessages as RFC 8894 section 3 describes them, and CertRep readers."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

SCEP = "2.16.840.1.113733.1.9."
_ASN1_HASH = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha224": hashes.SHA224}


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed(key: rsa.RSAPrivateKey, cn: str = "device") -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now + dt.timedelta(days=400))
        .sign(key, hashes.SHA256())
    )


def csr(
    key: rsa.RSAPrivateKey, cn: str, *, challenge: str | None = None, sans: tuple[str, ...] = ()
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), False)
    if challenge is not None:
        builder = builder.add_attribute(x509.ObjectIdentifier("1.2.840.113549.1.9.7"), challenge.encode())
    return builder.sign(key, hashes.SHA256())


def envelope_aes(content: bytes, recipient: x509.Certificate) -> bytes:
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(content).add_recipient(recipient)
    return builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


def envelope_des3(content: bytes, recipient: x509.Certificate) -> bytes:
    """3DES-CBC, as older clients send (cryptography's envelope builder makes only AES)."""
    key, iv = os.urandom(24), os.urandom(8)
    padder = sym_padding.PKCS7(64).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    public_key = recipient.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    enveloped = cms.EnvelopedData(
        {
            "version": "v0",
            "recipient_infos": [
                cms.RecipientInfo(
                    name="ktri",
                    value={
                        "version": "v0",
                        "rid": cms.RecipientIdentifier(
                            name="issuer_and_serial_number",
                            value={
                                "issuer": asn1_x509.Name.load(recipient.issuer.public_bytes()),
                                "serial_number": recipient.serial_number,
                            },
                        ),
                        "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
                        "encrypted_key": public_key.encrypt(key, padding.PKCS1v15()),
                    },
                )
            ],
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": {"algorithm": "tripledes_3key", "parameters": iv},
                "encrypted_content": ciphertext,
            },
        }
    )
    return bytes(cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump())


def issuer_and_serial(cert: x509.Certificate) -> bytes:
    value = cms.IssuerAndSerialNumber(
        {"issuer": asn1_x509.Name.load(cert.issuer.public_bytes()), "serial_number": cert.serial_number}
    )
    return bytes(value.dump())


@dataclass
class Message:
    """A pkiMessage to build; every field can be spoiled by a test."""

    message_type: str
    envelope: bytes
    signer: x509.Certificate
    signer_key: rsa.RSAPrivateKey
    transaction_id: str = field(default_factory=lambda: os.urandom(8).hex())
    nonce: bytes = field(default_factory=lambda: os.urandom(16))
    digest: str = "sha256"
    signing_time: dt.datetime | None = None

    def build(self, *, tamper: bool = False) -> bytes:
        hash_type = _ASN1_HASH[self.digest]
        h = hashes.Hash(hash_type())
        h.update(self.envelope)
        attrs = [
            {"type": "content_type", "values": ["data"]},
            {"type": "message_digest", "values": [h.finalize()]},
            {"type": cms.CMSAttributeType(SCEP + "2"), "values": [core.PrintableString(self.message_type)]},
            {"type": cms.CMSAttributeType(SCEP + "5"), "values": [core.OctetString(self.nonce)]},
            {"type": cms.CMSAttributeType(SCEP + "7"), "values": [core.PrintableString(self.transaction_id)]},
        ]
        if self.signing_time is not None:
            attrs.append({"type": "signing_time", "values": [cms.Time({"utc_time": self.signing_time})]})
        signed_attrs = cms.CMSAttributes([cms.CMSAttribute(a) for a in attrs])
        signature = self.signer_key.sign(signed_attrs.dump(), padding.PKCS1v15(), hash_type())
        if tamper:
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        signed = cms.SignedData(
            {
                "version": "v1",
                "digest_algorithms": [{"algorithm": self.digest}],
                "encap_content_info": {"content_type": "data", "content": self.envelope},
                "certificates": [
                    asn1_x509.Certificate.load(self.signer.public_bytes(serialization.Encoding.DER))
                ],
                "signer_infos": [
                    {
                        "version": "v1",
                        "sid": cms.SignerIdentifier(
                            name="issuer_and_serial_number",
                            value={
                                "issuer": asn1_x509.Name.load(self.signer.issuer.public_bytes()),
                                "serial_number": self.signer.serial_number,
                            },
                        ),
                        "digest_algorithm": {"algorithm": self.digest},
                        "signed_attrs": signed_attrs,
                        "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
                        "signature": signature,
                    }
                ],
            }
        )
        return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


@dataclass(frozen=True)
class CertRep:
    status: str  # "0" SUCCESS, "2" FAILURE, "3" PENDING
    fail_info: str | None
    transaction_id: str
    recipient_nonce: bytes
    envelope: bytes | None
    signer: x509.Certificate

    def certificates(self, key: rsa.RSAPrivateKey, recipient: x509.Certificate) -> list[x509.Certificate]:
        assert self.envelope is not None
        content = pkcs7.pkcs7_decrypt_der(self.envelope, recipient, key, [])
        return pkcs7.load_der_pkcs7_certificates(content)

    def content(self, key: rsa.RSAPrivateKey, recipient: x509.Certificate) -> bytes:
        assert self.envelope is not None
        return pkcs7.pkcs7_decrypt_der(self.envelope, recipient, key, [])


def read_cert_rep(der: bytes, ra: x509.Certificate) -> CertRep:
    """Parse a CertRep and check its signature with ``ra`` (as clients do)."""
    signed = cms.ContentInfo.load(der)["content"]
    (signer_info,) = list(signed["signer_infos"])
    attrs = {a["type"].dotted: a["values"][0] for a in signer_info["signed_attrs"]}
    signed_der = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    assert signer_info["digest_algorithm"]["algorithm"].native == "sha256"
    public_key = ra.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signer_info["signature"].native, signed_der, padding.PKCS1v15(), hashes.SHA256())
    content = signed["encap_content_info"]["content"]
    envelope = bytes(content.native) if content.native is not None else None

    def text(oid: str) -> str | None:
        value = attrs.get(SCEP + oid)
        return None if value is None else str(value.parsed.native)

    assert text("2") == "3"  # CertRep
    nonce = attrs[SCEP + "6"].parsed.native
    return CertRep(text("3") or "", text("4"), text("7") or "", bytes(nonce), envelope, ra)


def ra_certificate(ca_ra_cert: bytes) -> x509.Certificate:
    """The RA among GetCACert's certificates: the one that is not a CA."""
    for cert in pkcs7.load_der_pkcs7_certificates(ca_ra_cert):
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            return cert
    raise AssertionError("no RA certificate in GetCACert")


__all__ = ["CertRep", "Message", "algorithms"]

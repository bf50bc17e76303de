"""The pkcsPKIEnvelope (RFC 8894 section 3.2.2): opening a client's EnvelopedData with the RA
key and sealing a reply to the client's certificate.

Replies use cryptography's ``PKCS7EnvelopeBuilder`` (AES-256-CBC: OpenSSL 3 clients cannot
decrypt DES). Requests are opened with ``pkcs7_decrypt_der`` when their content cipher is
AES; it refuses DES and 3DES, which older clients (micromdm's scepclient 2.1 among them) still
send when encrypting, so for those the recipient's key is unwrapped with cryptography's RSA
and the content decrypted with its TripleDES primitive, the EnvelopedData read by asn1crypto.
"""

from __future__ import annotations

from asn1crypto import cms, parser
from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7

from certfleet.protocols.scep.errors import FailInfo, ScepFailure

__all__ = ["certificates_only", "crl_only", "open_envelope", "seal_envelope"]

_AES = ("aes128_cbc", "aes192_cbc", "aes256_cbc")
_DES = ("des", "tripledes_3key")


def _elements(encoded: bytes) -> list[tuple[int, bytes, bytes]]:
    """The (method, header, contents) of each TLV in ``encoded``, BER lengths included."""
    found, position = [], 0
    while position < len(encoded):
        _, method, _, header, contents, trailer = parser.parse(encoded[position:], strict=False)
        found.append((method, header, contents))
        position += len(header) + len(contents) + len(trailer)
    return found


def _encrypted_content_info(encoded: bytes) -> tuple[cms.EncryptionAlgorithm, bytes | None]:
    """RFC 5652 EncryptedContentInfo, read leniently: Go's pkcs7 package (micromdm's
    scepclient) wraps encryptedContent in a constructed [0] around an OCTET STRING instead of
    tagging it [0] IMPLICIT; OpenSSL reads that, asn1crypto's strict type does not."""
    (_, _, body), *_ = _elements(encoded)
    fields = _elements(body)
    if len(fields) < 2:
        raise ValueError("EncryptedContentInfo without an algorithm")
    algorithm = cms.EncryptionAlgorithm.load(fields[1][1] + fields[1][2])
    if len(fields) < 3:
        return algorithm, None
    method, _, contents = fields[2]
    if method == 0:
        return algorithm, contents
    return algorithm, b"".join(part for _, _, part in _elements(contents))


def _recipient(envelope: cms.EnvelopedData, ra: x509.Certificate) -> cms.KeyTransRecipientInfo:
    ra_serial = ra.serial_number
    ra_issuer = ra.issuer.public_bytes()
    for info in envelope["recipient_infos"]:
        if info.name != "ktri":
            continue
        rid = info.chosen["rid"]
        if rid.name == "issuer_and_serial_number":
            chosen = rid.chosen
            if chosen["serial_number"].native == ra_serial and chosen["issuer"].dump() == ra_issuer:
                return info.chosen
        elif (
            rid.chosen.native == ra.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        ):
            return info.chosen
    # Encrypted to another certificate (a stale RA, another server's): the request is not
    # for this RA, a transaction this server does not support.
    raise ScepFailure(FailInfo.BAD_REQUEST, "the request is not encrypted to this server's RA certificate")


def open_envelope(der: bytes, ra: x509.Certificate, ra_key: rsa.RSAPrivateKey) -> bytes:
    """The plaintext of a pkcsPKIEnvelope encrypted to ``ra``."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "enveloped_data":
            raise ScepFailure(FailInfo.BAD_REQUEST, "the signed content is not an EnvelopedData")
        envelope = info["content"]
        recipient = _recipient(envelope, ra)
        algorithm, ciphertext = _encrypted_content_info(envelope["encrypted_content_info"].dump())
        cipher_name = algorithm["algorithm"].native
        wrapped = recipient["encrypted_key"].native
        key_algorithm = recipient["key_encryption_algorithm"]["algorithm"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise ScepFailure(FailInfo.BAD_REQUEST, f"malformed EnvelopedData: {exc}") from None
    if key_algorithm != "rsaes_pkcs1v15" and key_algorithm != "rsa":
        raise ScepFailure(FailInfo.BAD_ALG, f"unsupported key transport {key_algorithm}")
    if cipher_name in _AES:
        try:
            return pkcs7.pkcs7_decrypt_der(der, ra, ra_key, [])
        except ValueError as exc:
            raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, f"the envelope does not decrypt: {exc}") from None
    if cipher_name not in _DES or ciphertext is None:
        raise ScepFailure(FailInfo.BAD_ALG, f"unsupported content encryption {cipher_name}")
    try:
        content_key = ra_key.decrypt(wrapped, padding.PKCS1v15())
        iv = algorithm["parameters"].native
        if cipher_name == "des":
            if len(content_key) != 8:
                raise ValueError("a DES key is 8 bytes")
            content_key = content_key * 3  # single DES as 3DES with three equal keys
        decryptor = Cipher(TripleDES(content_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = symmetric_padding.PKCS7(64).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except (ValueError, TypeError) as exc:
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, f"the envelope does not decrypt: {exc}") from None


def seal_envelope(content: bytes, recipient: x509.Certificate) -> bytes:
    """``content`` encrypted (AES-256-CBC) to ``recipient``, which must hold an RSA key."""
    if not isinstance(recipient.public_key(), rsa.RSAPublicKey):
        raise ScepFailure(FailInfo.BAD_ALG, "replies can only be encrypted to an RSA certificate")
    builder = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(content)
        .add_recipient(recipient)
        .set_content_encryption_algorithm(algorithms.AES256)
    )
    return builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


def certificates_only(certificates: list[x509.Certificate]) -> bytes:
    """A degenerate, certificates-only SignedData (RFC 8894 section 3.4)."""
    return pkcs7.serialize_certificates(certificates, serialization.Encoding.DER)


def crl_only(crl_der: bytes) -> bytes:
    """A degenerate SignedData carrying one CRL (RFC 8894 section 3.3.4); cryptography's
    ``serialize_certificates`` cannot carry a CRL, so asn1crypto builds it."""
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "data"},
            "crls": [asn1_crl.CertificateList.load(crl_der)],
            "signer_infos": [],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())

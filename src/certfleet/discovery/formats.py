"""Recognising certificate and key files by their content, not their name.

PEM (any number of blocks: certificates, PKCS#7, private keys in PKCS#8 or the traditional
OpenSSL forms), DER (a certificate, PKCS#7, PKCS#8, PKCS#12) and Java keystores. A file that
is none of these is not an error, it is simply not ours; a file that claims to be one (a PEM
header, a certificate extension) and does not parse is *malformed*.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import PurePath

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from certfleet.discovery._der import max_iteration_count, outer_length
from certfleet.discovery.keystores import (
    JKS_MAGIC,
    Budget,
    Material,
    Unlock,
    looks_like_pkcs12,
    open_java_keystore,
    open_pkcs12,
)
from certfleet.discovery.outcomes import FoundKey
from certfleet.discovery.trust import spki_sha256
from certfleet.x509.der import DerError

__all__ = ["CERTIFICATE_SUFFIXES", "MAX_PEM_BLOCKS", "read_material"]

CERTIFICATE_SUFFIXES = frozenset(
    {".pem", ".crt", ".cer", ".der", ".cert", ".ca-bundle", ".p7b", ".p7c", ".p7s", ".p12", ".pfx", ".key"}
    | {".jks", ".jceks", ".keystore", ".truststore"}
)
MAX_PEM_BLOCKS = 10_000
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #]{1,40})-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_PKCS7_LABELS = {b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"}
_CLEAR_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY"}


def read_material(data: bytes, name: str, unlock: Unlock, budget: Budget) -> Material | None:
    """Parse ``data`` (the content of the file ``name``); ``None`` when it is not a
    certificate or key file at all. Raises OverBudget when ``budget`` runs out."""
    if data[:4] in JKS_MAGIC:
        return open_java_keystore(data, unlock, budget)
    if b"-----BEGIN " in data:
        material = _read_pem(data, unlock, budget)
        if material is not None:
            return material
    suffix = PurePath(name).suffix.lower()
    if data[:1] == b"\x30" and outer_length(data) == len(data):
        material = _read_der(data, unlock, budget)
        if material is not None:
            return material
        if suffix in CERTIFICATE_SUFFIXES:
            return Material("der", malformed="DER data that is no certificate, PKCS#7, PKCS#8 or PKCS#12")
        return None
    if suffix in CERTIFICATE_SUFFIXES:
        return Material("unknown", malformed=_garbage_reason(data))
    return None


def _garbage_reason(data: bytes) -> str:
    if data[:1] == b"\x30":
        return "truncated DER: the length field runs past the end of the file"
    if not data:
        return "empty file"
    return "neither PEM nor DER: garbage or another format"


def _read_pem(data: bytes, unlock: Unlock, budget: Budget) -> Material | None:
    material = Material("pem")
    recognised = 0
    for count, match in enumerate(_PEM_BLOCK.finditer(data)):
        if count >= MAX_PEM_BLOCKS:
            material.notes.append(f"stopped after {MAX_PEM_BLOCKS} PEM blocks")
            break
        label, body = match.group(1), match.group(2)
        if label in _CERT_LABELS | _PKCS7_LABELS | _CLEAR_KEY_LABELS | {b"ENCRYPTED PRIVATE KEY"}:
            recognised += 1
        else:
            continue  # CSRs, CRLs, public keys, parameters: not ours
        budget.check(f"PEM block {count + 1}")
        try:
            _read_pem_block(label, body, match.group(0), material, unlock, budget)
        except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as exc:
            material.notes.append(f"a {label.decode()} block does not parse: {_short(exc)}")
    if recognised == 0:
        if b"-----BEGIN CERTIFICATE-----" in data or b"PRIVATE KEY-----" in data:
            return Material("pem", malformed="a PEM block is truncated (no matching END line)")
        return None
    if not material.certificates and not material.keys:
        material.malformed = "; ".join(material.notes) or "no PEM block parses"
        material.notes = []
    return material


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def _headers_and_der(body: bytes) -> tuple[bytes, bytes]:
    """RFC 1421 headers (``Proc-Type``, ``DEK-Info``) come before a blank line."""
    if b":" in body.split(b"\n", 1)[0]:
        head, _, rest = body.partition(b"\n\n") if b"\n\n" in body else body.partition(b"\r\n\r\n")
        return head, base64.b64decode(b"".join(rest.split()), validate=True)
    return b"", base64.b64decode(b"".join(body.split()), validate=True)


def _read_pem_block(
    label: bytes, body: bytes, block: bytes, material: Material, unlock: Unlock, budget: Budget
) -> None:
    headers, der = _headers_and_der(body)
    if label in _CERT_LABELS:
        # TRUSTED CERTIFICATE (OpenSSL) appends trust settings after the certificate.
        length = outer_length(der)
        material.certificates.append(x509.load_der_x509_certificate(der[:length] if length else der))
    elif label in _PKCS7_LABELS:
        material.certificates.extend(pkcs7.load_der_pkcs7_certificates(der))
    elif label in _CLEAR_KEY_LABELS and b"ENCRYPTED" not in headers:
        key = serialization.load_pem_private_key(block, None, unsafe_skip_rsa_key_validation=True)
        material.keys.append(FoundKey(spki_sha256(key.public_key()), False, "pem"))
    else:
        material.keys.append(_open_encrypted_key(block, der, unlock, budget, material.notes, pem=True))


def _open_encrypted_key(
    raw: bytes, der: bytes, unlock: Unlock, budget: Budget, notes: list[str], *, pem: bool
) -> FoundKey:
    """Try the passwords on an encrypted key (after checking its PBKDF2 iteration count):
    an opened key can be paired with its certificate."""
    kind = "pem" if pem else "der"
    try:
        iterations = max_iteration_count(der)
    except DerError:
        iterations = 0  # traditional OpenSSL encryption (MD5, one iteration): nothing to cap
    if iterations > unlock.max_iterations:
        notes.append(
            f"an encrypted key was not tried: iteration count {iterations} exceeds the cap "
            f"of {unlock.max_iterations}"
        )
        return FoundKey(None, True, kind)
    loader = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    for tried, password in enumerate(unlock.passwords, 1):
        budget.check(f"trying password {tried} of {len(unlock.passwords)} on an encrypted key")
        try:
            key = loader(raw, password, unsafe_skip_rsa_key_validation=True)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return FoundKey(spki_sha256(key.public_key()), True, kind)
    return FoundKey(None, True, kind)


def _read_der(data: bytes, unlock: Unlock, budget: Budget) -> Material | None:
    try:
        return Material("der", certificates=[x509.load_der_x509_certificate(data)])
    except ValueError:
        pass
    if looks_like_pkcs12(data):
        return open_pkcs12(data, unlock, budget)
    try:
        return Material("pkcs7", certificates=list(pkcs7.load_der_pkcs7_certificates(data)))
    except (ValueError, UnsupportedAlgorithm):
        pass
    try:
        key = serialization.load_der_private_key(data, None, unsafe_skip_rsa_key_validation=True)
        return Material("der", keys=[FoundKey(spki_sha256(key.public_key()), False, "der")])
    except TypeError:
        # "Password was not given but private key is encrypted": an EncryptedPrivateKeyInfo.
        material = Material("der")
        material.keys.append(_open_encrypted_key(data, data, unlock, budget, material.notes, pem=False))
        return material
    except (ValueError, UnsupportedAlgorithm):
        return None

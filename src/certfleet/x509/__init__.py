"""Pure helpers over ``cryptography``: names, keys, certificates, CSRs."""

from __future__ import annotations

from certfleet.x509.certificates import (
    CertificateFacts,
    fingerprint_sha256,
    is_ca,
    key_usage,
    load_certificates,
    serial_hex,
    signed_by,
    to_pem,
)
from certfleet.x509.csr import csr_public_key, load_csr, names_from_csr
from certfleet.x509.errors import BadKey, BadName, MalformedInput
from certfleet.x509.keys import (
    KeyDescription,
    KeyType,
    check_public_key,
    describe_public_key,
    generate_private_key,
    signature_hash_for,
    spki_der,
    spki_sha256,
)
from certfleet.x509.names import MAX_SANS, SubjectName, parse_names

__all__ = [
    "MAX_SANS",
    "BadKey",
    "BadName",
    "CertificateFacts",
    "KeyDescription",
    "KeyType",
    "MalformedInput",
    "SubjectName",
    "check_public_key",
    "csr_public_key",
    "describe_public_key",
    "fingerprint_sha256",
    "generate_private_key",
    "is_ca",
    "key_usage",
    "load_certificates",
    "load_csr",
    "names_from_csr",
    "parse_names",
    "serial_hex",
    "signature_hash_for",
    "signed_by",
    "spki_der",
    "spki_sha256",
    "to_pem",
]

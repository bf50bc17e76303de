"""A certificate's fields as the certificate page shows them (RFC 5280 section 4.1 and the
section 4.2 extensions by name; any other extension by OID, with its criticality)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certfleet.x509 import KeyDescription, describe_public_key

__all__ = ["Decoded", "colon_hex", "decode"]

_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def colon_hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


@dataclass(frozen=True)
class Decoded:
    fields: tuple[tuple[str, str], ...]
    extensions: tuple[tuple[str, bool, str], ...]  # (name, critical, value)
    sha256: str
    sha1: str
    pem: str


def _names(names: Iterable[x509.GeneralName]) -> str:
    out: list[str] = []
    for name in names:
        if isinstance(name, x509.DNSName):
            out.append(f"DNS:{name.value}")
        elif isinstance(name, x509.IPAddress):
            out.append(f"IP:{name.value}")
        elif isinstance(name, x509.UniformResourceIdentifier):
            out.append(f"URI:{name.value}")
        elif isinstance(name, x509.RFC822Name):
            out.append(f"email:{name.value}")
        elif isinstance(name, x509.DirectoryName):
            out.append(f"DirName:{name.value.rfc4514_string()}")
        else:
            out.append(str(name.value))
    return ", ".join(out)


def _key_usage(ku: x509.KeyUsage) -> str:
    used = [u.replace("_", " ") for u in _KEY_USAGES if getattr(ku, u)]
    if ku.key_agreement:
        used += [
            u for u, on in (("encipher only", ku.encipher_only), ("decipher only", ku.decipher_only)) if on
        ]
    return ", ".join(used)


def _extension(ext: x509.Extension[x509.ExtensionType]) -> tuple[str, str]:
    value = ext.value
    name = getattr(ext.oid, "_name", ext.oid.dotted_string)
    if isinstance(value, x509.SubjectAlternativeName):
        return "Subject Alternative Name", _names(value)
    if isinstance(value, x509.BasicConstraints):
        path = "" if value.path_length is None else f", path length {value.path_length}"
        return "Basic Constraints", f"CA: {'yes' if value.ca else 'no'}{path}"
    if isinstance(value, x509.KeyUsage):
        return "Key Usage", _key_usage(value)
    if isinstance(value, x509.ExtendedKeyUsage):
        return "Extended Key Usage", ", ".join(getattr(o, "_name", o.dotted_string) for o in value)
    if isinstance(value, x509.SubjectKeyIdentifier):
        return "Subject Key Identifier", colon_hex(value.digest)
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return "Authority Key Identifier", colon_hex(value.key_identifier or b"")
    if isinstance(value, x509.AuthorityInformationAccess):
        described = (
            (getattr(d.access_method, "_name", d.access_method.dotted_string), _names([d.access_location]))
            for d in value
        )
        return "Authority Information Access", ", ".join(f"{method}: {where}" for method, where in described)
    if isinstance(value, x509.CRLDistributionPoints):
        return "CRL Distribution Points", ", ".join(_names(p.full_name or []) for p in value)
    if isinstance(value, x509.CertificatePolicies):
        return "Certificate Policies", ", ".join(p.policy_identifier.dotted_string for p in value)
    if isinstance(value, x509.PrecertificateSignedCertificateTimestamps):
        return "Signed Certificate Timestamps", f"{len(value)} SCTs"
    return name, "(present)"


def _key_text(key: KeyDescription) -> str:
    if key.algorithm == "rsa":
        return f"{key.label} ({key.size} bits)"
    if key.post_quantum:  # FIPS 204 sizes: what the parameter set costs on the wire
        return (
            f"{key.label} ({key.public_key_bytes:,}-byte key, "
            f"{key.signature_bytes:,}-byte signatures; not quantum-vulnerable)"
        )
    return key.label


def decode(der: bytes) -> Decoded:
    cert = x509.load_der_x509_certificate(der)
    key = describe_public_key(cert.public_key())
    fields = (
        ("Version", f"v{cert.version.value + 1}"),
        (
            "Serial number",
            colon_hex(cert.serial_number.to_bytes((cert.serial_number.bit_length() + 7) // 8 or 1, "big")),
        ),
        ("Subject", cert.subject.rfc4514_string() or "(empty)"),
        ("Issuer", cert.issuer.rfc4514_string()),
        ("Not before", cert.not_valid_before_utc.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("Not after", cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("Public key", _key_text(key)),
        ("Size", f"{len(der):,} bytes (DER)"),
        (
            "Signature algorithm",
            getattr(cert.signature_algorithm_oid, "_name", cert.signature_algorithm_oid.dotted_string),
        ),
    )
    extensions: list[tuple[str, bool, str]] = []
    try:
        for ext in cert.extensions:
            name, value = _extension(ext)
            extensions.append((name, ext.critical, value))
    except ValueError as exc:  # a malformed extension in a certificate found in the wild
        extensions.append(("(unreadable extensions)", False, str(exc)))
    return Decoded(
        fields,
        tuple(extensions),
        colon_hex(hashlib.sha256(der).digest()),
        colon_hex(hashlib.sha1(der, usedforsecurity=False).digest()),
        cert.public_bytes(serialization.Encoding.PEM).decode(),
    )

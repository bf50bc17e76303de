"""A cryptographic bill of materials (CycloneDX 1.6 CBOM, JSON) of a crypto report.

One ``cryptographic-asset`` component per certificate, per subject public key (keys shared by
several certificates, as a renewal for the same key, appear once) and per algorithm (key and
signature algorithms apart: an RSA key can sign with SHA-1 or SHA-256). ``dependencies``
lead from each certificate to its key, its signature algorithm and its issuing certfleet CA,
and from each key to its algorithm. Where each certificate was seen is its evidence
(``evidence.occurrences``); its team, source and weaknesses are ``certfleet:`` properties.

Built as plain dicts: the document is small and flat, and tests validate it against the
official 1.6 schema with cyclonedx-python-lib's validator.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from certfleet import __version__
from certfleet.clock import iso
from certfleet.inventory.crypto import Algorithm, SignatureAlgorithm
from certfleet.services.crypto_report import APART, CryptoEntry, CryptoReport

__all__ = ["cbom"]

_FORMAT = "X.509"


def _spki_sha256(entry: CryptoEntry) -> str | None:
    """SHA-256 of the certificate's SubjectPublicKeyInfo (how keys on disk were paired)."""
    der = entry.certificate.der
    if der is None:
        return None
    from cryptography import x509

    from certfleet.x509 import spki_sha256

    try:
        return spki_sha256(x509.load_der_x509_certificate(der).public_key())
    except ValueError:  # a stored certificate whose key cryptography cannot load
        return None


def _key_algorithm(key: Algorithm) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "primitive": "signature",
        "nistQuantumSecurityLevel": key.nist_quantum_level,
        "cryptoFunctions": ["keygen", "sign", "verify"],
    }
    if key.parameter_set:
        properties["parameterSetIdentifier"] = key.parameter_set
    if key.family == "ec" and key.parameter_set:
        properties["curve"] = f"nist/{key.parameter_set}"
    crypto: dict[str, Any] = {"assetType": "algorithm", "algorithmProperties": properties}
    if key.oid:
        crypto["oid"] = key.oid
    return {
        "type": "cryptographic-asset",
        "bom-ref": f"crypto/algorithm/{key.label}",
        "name": key.label.upper() if key.family == "ml-dsa" else key.label,
        "cryptoProperties": crypto,
        "properties": _flags(key.quantum_vulnerable, (key.weakness,)),
    }


def _signature_algorithm(signature: SignatureAlgorithm) -> dict[str, Any]:
    return {
        "type": "cryptographic-asset",
        "bom-ref": f"crypto/signature/{signature.name}",
        "name": signature.name,
        "cryptoProperties": {
            "assetType": "algorithm",
            "algorithmProperties": {
                "primitive": "signature",
                "nistQuantumSecurityLevel": signature.nist_quantum_level,
                "cryptoFunctions": ["sign", "verify"],
            },
        },
        "properties": _flags(signature.quantum_vulnerable, (signature.weakness,)),
    }


def _flags(vulnerable: bool | None, weaknesses: tuple[str | None, ...]) -> list[dict[str, str]]:
    spelled = {True: "true", False: "false", None: "unknown"}[vulnerable]
    flags = [{"name": "certfleet:quantum-vulnerable", "value": spelled}]
    return flags + [{"name": "certfleet:weakness", "value": w} for w in weaknesses if w]


def _certificate(entry: CryptoEntry, ref: str, key_ref: str) -> dict[str, Any]:
    c = entry.certificate
    properties = [
        {"name": "certfleet:serial", "value": c.serial},
        {"name": "certfleet:source", "value": c.source},
        *_flags(entry.quantum_vulnerable, entry.weaknesses),
    ]
    if c.team:
        properties.append({"name": "certfleet:team", "value": c.team})
    owner, note = APART.get(c.source, (None, None))  # not a team's: an agent identity, a root
    if owner and note:
        properties.append({"name": "certfleet:owner", "value": owner})
        properties.append({"name": "certfleet:note", "value": note})
    if entry.chain:
        properties.append({"name": "certfleet:ca-chain", "value": " > ".join(entry.chain)})
    component: dict[str, Any] = {
        "type": "cryptographic-asset",
        "bom-ref": ref,
        "name": c.subject or c.fingerprint_sha256,
        "cryptoProperties": {
            "assetType": "certificate",
            "certificateProperties": {
                "subjectName": c.subject,
                "issuerName": c.issuer,
                "notValidBefore": iso(c.not_before),
                "notValidAfter": iso(c.not_after),
                "signatureAlgorithmRef": f"crypto/signature/{c.signature_algorithm}",
                "subjectPublicKeyRef": key_ref,
                "certificateFormat": _FORMAT,
            },
        },
        "hashes": [{"alg": "SHA-256", "content": c.fingerprint_sha256}],
        "properties": properties,
    }
    if c.places:
        component["evidence"] = {"occurrences": [{"location": str(p)} for p in c.places]}
    return component


def _key(entry: CryptoEntry, ref: str, key_id: str) -> dict[str, Any]:
    return {
        "type": "cryptographic-asset",
        "bom-ref": ref,
        "name": f"{entry.key.label} public key",
        "cryptoProperties": {
            "assetType": "related-crypto-material",
            "relatedCryptoMaterialProperties": {
                "type": "public-key",
                "id": key_id,
                "state": "active",
                "algorithmRef": f"crypto/algorithm/{entry.key.label}",
                "size": entry.certificate.key_size,
                "format": "SubjectPublicKeyInfo",
            },
        },
    }


def cbom(report: CryptoReport) -> dict[str, Any]:
    """The CycloneDX 1.6 JSON document of ``report`` (built with its DER for key identities)."""
    components: dict[str, dict[str, Any]] = {}
    depends: dict[str, list[str]] = {}
    ca_refs: dict[str, str] = {}  # CA subject DN -> its certificate's bom-ref
    for entry in report.entries:
        if entry.certificate.source == "ca":
            ca_refs[entry.certificate.subject] = f"crypto/certificate/{entry.certificate.fingerprint_sha256}"
    for entry in report.entries:
        c = entry.certificate
        key_id = _spki_sha256(entry) or hashlib.sha256(f"key-of:{c.fingerprint_sha256}".encode()).hexdigest()
        cert_ref, key_ref = f"crypto/certificate/{c.fingerprint_sha256}", f"crypto/key/{key_id}"
        algorithm_ref, signature_ref = (
            f"crypto/algorithm/{entry.key.label}",
            f"crypto/signature/{c.signature_algorithm}",
        )
        components.setdefault(algorithm_ref, _key_algorithm(entry.key))
        components.setdefault(signature_ref, _signature_algorithm(entry.signature))
        components.setdefault(key_ref, _key(entry, key_ref, key_id))
        depends.setdefault(key_ref, [algorithm_ref])
        components[cert_ref] = _certificate(entry, cert_ref, key_ref)
        issuer = ca_refs.get(c.issuer)
        depends[cert_ref] = [key_ref, signature_ref] + ([issuer] if issuer and issuer != cert_ref else [])
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": uuid.uuid4().urn,
        "version": 1,
        "metadata": {
            "timestamp": iso(report.generated_at),
            "tools": {"components": [{"type": "application", "name": "certfleet", "version": __version__}]},
            "properties": [{"name": "certfleet:team", "value": report.team}] if report.team else [],
        },
        "components": list(components.values()),
        "dependencies": [{"ref": ref, "dependsOn": sorted(set(on))} for ref, on in depends.items()],
    }

"""What the cryptographic inventory knows of a key or signature algorithm, and the rows the
storage gives it (``certfleet crypto report``, the "Cryptographic exposure" page and the
``certfleet_certificates_by_algorithm`` gauge all classify with :func:`classify_key`).

Quantum vulnerability follows NIST IR 8547 (draft): every algorithm whose security rests on
factoring or discrete logarithms (RSA, ECDSA, EdDSA, DSA, finite-field DH) falls to Shor's
algorithm; ML-DSA (FIPS 204) and SLH-DSA (FIPS 205) do not. Weakness is about today's
attacks: RSA under 2048 bits (NIST SP 800-131A Rev. 2), DSA (withdrawn by FIPS 186-5), EC
curves under 224 bits, and SHA-1, MD5 or MD2 signatures.

Stored key algorithms are whatever :func:`certfleet.x509.describe_public_key` said when the
certificate was recorded: ``rsa``, ``ec``, ``ed25519``, ``ed448``, ``dsa``, and for ML-DSA
either ``ml-dsa-65`` or the class name it fell back to (``mldsa65publickey``): both read the
same here, so records made before ML-DSA was a key type classify correctly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Algorithm",
    "AlgorithmCount",
    "CryptoCertificate",
    "CryptoInventoryReader",
    "CryptoPlace",
    "SignatureAlgorithm",
    "classify_key",
    "classify_signature",
]

# FIPS 204 section 4, table 1: ML-DSA-44/65/87 meet NIST security categories 2, 3 and 5.
_ML_DSA_LEVEL = {"44": 2, "65": 3, "87": 5}
_ML_DSA_OID = {
    "44": "2.16.840.1.101.3.4.3.17",
    "65": "2.16.840.1.101.3.4.3.18",
    "87": "2.16.840.1.101.3.4.3.19",
}
_ML_DSA = re.compile(r"^ml-?dsa-?(44|65|87)(publickey)?$")
_KEY_OID = {
    "rsa": "1.2.840.113549.1.1.1",
    "ec": "1.2.840.10045.2.1",
    "ed25519": "1.3.101.112",
    "ed448": "1.3.101.113",
    "dsa": "1.2.840.10040.4.1",
    "dh": "1.2.840.113549.1.3.1",
}
_CURVE = {256: "P-256", 384: "P-384", 521: "P-521", 224: "P-224", 192: "P-192"}
_CLASSICAL = ("rsa", "ec", "ed25519", "ed448", "dsa", "dh", "dhpublickey", "x25519", "x448")


@dataclass(frozen=True)
class Algorithm:
    """A key algorithm as the inventory groups it. ``label`` is certfleet's key-type spelling
    (``rsa-2048``, ``ec-p256``, ``ed25519``, ``ml-dsa-65``); ``quantum_vulnerable`` is None
    for an algorithm certfleet does not know; ``nist_quantum_level`` is the NIST security
    category against a quantum attacker (0: broken by one)."""

    label: str
    family: str
    size: int
    quantum_vulnerable: bool | None
    nist_quantum_level: int
    parameter_set: str | None = None
    oid: str | None = None
    weakness: str | None = None

    @property
    def vulnerability(self) -> str:
        """``yes``, ``no`` or ``unknown``: the gauge's and the table's spelling."""
        return {True: "yes", False: "no", None: "unknown"}[self.quantum_vulnerable]


@dataclass(frozen=True)
class SignatureAlgorithm:
    name: str
    quantum_vulnerable: bool | None
    nist_quantum_level: int
    weakness: str | None = None


def classify_key(key_algorithm: str, key_size: int) -> Algorithm:
    """Classify a stored (key algorithm, key size) pair."""
    name = key_algorithm.strip().lower()
    ml_dsa = _ML_DSA.match(name)
    if ml_dsa:
        level = ml_dsa.group(1)
        return Algorithm(
            f"ml-dsa-{level}", "ml-dsa", key_size, False, _ML_DSA_LEVEL[level], level, _ML_DSA_OID[level]
        )
    if name == "rsa":
        weak = f"RSA key of {key_size} bits (under 2048)" if key_size < 2048 else None
        return Algorithm(f"rsa-{key_size}", "rsa", key_size, True, 0, str(key_size), _KEY_OID["rsa"], weak)
    if name == "ec":
        weak = f"EC curve of {key_size} bits (under 224)" if key_size < 224 else None
        curve = _CURVE.get(key_size, f"{key_size}-bit curve")
        return Algorithm(f"ec-p{key_size}", "ec", key_size, True, 0, curve, _KEY_OID["ec"], weak)
    if name in ("ed25519", "ed448"):
        return Algorithm(name, name, key_size, True, 0, name.capitalize(), _KEY_OID[name])
    if name == "dsa":
        weak = "DSA (withdrawn for signing by FIPS 186-5)"
        return Algorithm(f"dsa-{key_size}", "dsa", key_size, True, 0, str(key_size), _KEY_OID["dsa"], weak)
    if name in _CLASSICAL:
        family = "dh" if name.startswith("dh") else name
        return Algorithm(family, family, key_size, True, 0, None, _KEY_OID.get(family))
    return Algorithm(name or "unknown", name or "unknown", key_size, None, 0)


def classify_signature(name: str) -> SignatureAlgorithm:
    """Classify a stored signature algorithm (cryptography's OID name, or a dotted OID)."""
    lowered = name.lower().replace("_", "-")
    ml_dsa = _ML_DSA.match(lowered)
    if ml_dsa:
        return SignatureAlgorithm(name, False, _ML_DSA_LEVEL[ml_dsa.group(1)])
    if lowered.startswith("slh-dsa"):
        return SignatureAlgorithm(name, False, 1)
    weakness = None
    for digest in ("md2", "md5", "sha1"):
        if digest in lowered.replace("-", ""):
            weakness = f"{digest.upper().replace('SHA1', 'SHA-1')} signature"
            break
    known = any(k in lowered for k in ("rsa", "ecdsa", "ed25519", "ed448", "dsa"))
    return SignatureAlgorithm(name, True if known else None, 0, weakness)


@dataclass(frozen=True)
class CryptoPlace:
    """Where a certificate (and its key) lives: ``endpoint`` (``host:port``, with SNI), a
    ``file`` found by a scan (``path``), or an ``agent`` deployment (``host:path``)."""

    kind: str
    location: str
    sni: str = ""

    def __str__(self) -> str:
        if self.kind == "endpoint" and self.sni:
            return f"{self.location} (SNI {self.sni})"
        return self.location


@dataclass(frozen=True)
class CryptoCertificate:
    """One in-use certificate as the inventory stores it, with where it was seen. ``der`` is
    read only when asked (the CBOM names each subject public key)."""

    id: int
    serial: str
    fingerprint_sha256: str
    subject: str
    issuer: str
    issuer_ca_id: str | None
    not_before: dt.datetime
    not_after: dt.datetime
    key_algorithm: str
    key_size: int
    signature_algorithm: str
    profile: str | None
    source: str
    status: str
    team: str | None
    places: tuple[CryptoPlace, ...] = ()
    der: bytes | None = None


@dataclass(frozen=True)
class AlgorithmCount:
    """In-use certificates of one team with one key and signature algorithm; ``managed`` of
    them certfleet's CA issued (what a rotation campaign can replace)."""

    team: str | None
    key_algorithm: str
    key_size: int
    signature_algorithm: str
    count: int
    managed: int = 0


class CryptoInventoryReader(Protocol):
    """The bulk reads behind the cryptographic inventory (the store implements it)."""

    def certificates(
        self, now: dt.datetime, team: str | None, *, with_der: bool = False
    ) -> Sequence[CryptoCertificate]:
        """Every in-use certificate (stored active, notAfter not passed), ``team``'s only when
        given, with its current places (discovery locations not gone, latest agent
        deployments that succeeded)."""
        ...

    def algorithm_counts(self, now: dt.datetime, team: str | None) -> Sequence[AlgorithmCount]:
        """One grouped query: in-use certificates per team, key and signature algorithm."""
        ...

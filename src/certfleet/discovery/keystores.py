"""Password-protected containers: PKCS#12 (RFC 7292) and Java keystores (JKS, JCEKS).

Opening one costs a key derivation per password tried, and the file chooses the iteration
count. A hostile PKCS#12 asking for two billion iterations would pin a core for hours inside
a C call nobody can interrupt, so the counts are read first (:func:`max_iteration_count`) and
the file is refused above :data:`MAX_KDF_ITERATIONS`; a wall-clock budget bounds the number
of passwords tried. (Counts inside *encrypted* bags only show after decryption: those ride
on the cap of the outer ones, which every real tool sets alike.)

Java keystores are read with ``pyjks``: its certificates are stored in clear, so a keystore
whose password we lack still yields them, its integrity unverified (and said so).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jks
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certfleet.discovery._der import max_iteration_count
from certfleet.discovery.outcomes import FoundKey
from certfleet.discovery.trust import spki_sha256
from certfleet.x509.der import DerError, read_element

__all__ = [
    "JKS_MAGIC",
    "MAX_KDF_ITERATIONS",
    "Material",
    "Unlock",
    "looks_like_pkcs12",
    "open_java_keystore",
    "open_pkcs12",
]

# OpenSSL writes 2048, keytool 10,000, password managers up to 600,000 (PBKDF2-SHA256).
MAX_KDF_ITERATIONS = 1_000_000
JKS_MAGIC = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")


@dataclass(frozen=True)
class Unlock:
    """How hard to try: the passwords, the iteration cap and a time budget per file."""

    passwords: tuple[bytes, ...] = ()
    max_iterations: int = MAX_KDF_ITERATIONS
    budget_seconds: float = 10.0

    def candidates(self) -> list[bytes | None]:
        # No password and the empty one differ in PKCS#12 (RFC 7292 appendix B.1).
        return [None, b"", *dict.fromkeys(p for p in self.passwords if p)]


@dataclass
class Material:
    """What one file held. ``locked`` with a reason when it could not be opened."""

    format: str
    certificates: list[x509.Certificate] = field(default_factory=list)
    keys: list[FoundKey] = field(default_factory=list)
    locked: str | None = None
    malformed: str | None = None
    notes: list[str] = field(default_factory=list)


def looks_like_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, ... } (RFC 7292 section 4)."""
    try:
        outer = read_element(data, ber=True)
        first = read_element(data, outer.start, outer.end, ber=True)
    except DerError:
        return False
    return outer.tag == 0x30 and first.tag == 0x02 and data[first.start : first.end] == b"\x03"


def open_pkcs12(data: bytes, unlock: Unlock) -> Material:
    material = Material("pkcs12")
    try:
        iterations = max_iteration_count(data)
    except DerError as exc:
        material.malformed = f"PKCS#12 structure does not parse: {exc}"
        return material
    if iterations > unlock.max_iterations:
        material.locked = (
            f"not opened: it asks for {iterations} key-derivation iterations (cap {unlock.max_iterations})"
        )
        return material
    deadline = time.monotonic() + unlock.budget_seconds
    tried = 0
    for password in unlock.candidates():
        if time.monotonic() > deadline:
            material.locked = f"gave up after {tried} passwords ({unlock.budget_seconds:g} s budget)"
            return material
        tried += 1
        try:
            bundle = pkcs12.load_pkcs12(data, password)
        except ValueError:
            continue
        if bundle.cert is not None:
            material.certificates.append(bundle.cert.certificate)
        material.certificates.extend(c.certificate for c in bundle.additional_certs)
        if bundle.key is not None:
            encrypted = bool(password)
            material.keys.append(FoundKey(spki_sha256(bundle.key.public_key()), encrypted, "pkcs12"))
        if not password:
            material.notes.append("opens without a password")
        return material
    material.locked = f"none of the {tried} passwords opens it (wrong password or damaged file)"
    return material


def open_java_keystore(data: bytes, unlock: Unlock) -> Material:
    fmt = "jceks" if data[:4] == JKS_MAGIC[1] else "jks"
    material = Material(fmt)
    store: jks.KeyStore | None = None
    for password in unlock.candidates():
        if password is None:
            continue
        try:
            store = jks.KeyStore.loads(data, password.decode("utf-8", "replace"), try_decrypt_keys=True)
            break
        except jks.util.KeystoreSignatureException:
            continue
        except (jks.util.KeystoreException, ValueError, UnicodeDecodeError, KeyError, IndexError) as exc:
            material.malformed = f"{fmt.upper()} keystore does not parse: {exc}"
            return material
    if store is None:
        try:
            # Certificates are stored in clear: read them without checking the integrity hash.
            store = jks.KeyStore.loads(data, None, try_decrypt_keys=False)
        except (jks.util.KeystoreException, ValueError, KeyError, IndexError) as exc:
            material.malformed = f"{fmt.upper()} keystore does not parse: {exc}"
            return material
        material.notes.append("no password matched: integrity not verified, keys not decrypted")
    _collect(store, material)
    return material


def _load(der: bytes, material: Material) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        material.notes.append("an entry holds a certificate that does not parse")
        return None


def _collect(store: jks.KeyStore, material: Material) -> None:
    for entry in store.private_keys.values():
        chain = [c for c in (_load(der, material) for _, der in entry.cert_chain) if c is not None]
        material.certificates.extend(chain)
        spki: str | None = spki_sha256(chain[0].public_key()) if chain else None
        if entry.is_decrypted():
            try:
                key = serialization.load_der_private_key(entry.pkey_pkcs8, None)
                spki = spki_sha256(key.public_key())
            except (ValueError, TypeError):
                pass
        # JKS "encrypts" keys with a SHA-1 keystream, JCEKS with PBE-3DES: weak, but not clear text.
        material.keys.append(FoundKey(spki, True, material.format))
    for entry in store.certs.values():
        cert = _load(entry.cert, material)
        if cert is not None:
            material.certificates.append(cert)
    if store.secret_keys:
        material.notes.append(f"{len(store.secret_keys)} secret key entries (not certificates)")

"""Password-protected containers: PKCS#12 (RFC 7292) and Java keystores (JKS, JCEKS).

Opening one costs a key derivation per password tried, and the file chooses the iteration
count. A hostile PKCS#12 asking for two billion iterations would pin a core for hours inside
a C call nobody can interrupt, so the counts are read first (:func:`iteration_counts`) and
the file is skipped above :data:`MAX_KDF_ITERATIONS` (or when all its derivations together
exceed four times that); JCEKS keys are decrypted only up to :data:`JCEKS_MAX_ITERATIONS`.
(Counts inside *encrypted* PKCS#12 bags only show after decryption: those are bounded by
the per-file :class:`Budget` alone, checked before each password.)

Why a budget checked between steps rather than a worker killed on a timer: a thread cannot
be stopped inside OpenSSL's derivation (nor inside pyjks' Python loop without its help),
and a process per file would cost a fork and a fresh import of cryptography for every
PKCS#12 on a disk. The caps make each step short, so checking the clock before each one
bounds a file to its budget plus one step.

Java keystores are read with ``pyjks``: its certificates are stored in clear, so a keystore
whose password we lack still yields them, its integrity unverified (and said so).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certfleet.discovery._der import iteration_counts
from certfleet.discovery.outcomes import FoundKey
from certfleet.discovery.trust import spki_sha256
from certfleet.x509.der import DerError, read_element

if TYPE_CHECKING:
    # pyjks (with pycryptodome and pyasn1's modules) takes about 0.3 s to import: only a scan
    # that meets a Java keystore pays it, not every command that imports discovery.
    import jks

__all__ = [
    "DEFAULT_FILE_BUDGET_SECONDS",
    "JCEKS_MAX_ITERATIONS",
    "JKS_MAGIC",
    "MAX_KDF_ITERATIONS",
    "Budget",
    "Material",
    "OverBudget",
    "Unlock",
    "looks_like_pkcs12",
    "open_java_keystore",
    "open_pkcs12",
]

# OpenSSL writes 2048, keytool 10,000, password managers up to 600,000 (PBKDF2-SHA256).
MAX_KDF_ITERATIONS = 1_000_000
# What keytool writes for a JCEKS key (KeyProtector's default; Java reads at most 5,000,000
# and only writes more than 200,000 when told to). pyjks derives in pure Python, about
# 0.7 s per 200,000 iterations here, so Java's default is also the cap.
JCEKS_MAX_ITERATIONS = 200_000
# A few derivations at the cap take a second or two on a slow core.
DEFAULT_FILE_BUDGET_SECONDS = 5.0
JKS_MAGIC = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")


@dataclass(frozen=True)
class Unlock:
    """How hard to try: the passwords and the iteration caps."""

    passwords: tuple[bytes, ...] = ()
    max_iterations: int = MAX_KDF_ITERATIONS
    max_jceks_iterations: int = JCEKS_MAX_ITERATIONS

    def candidates(self) -> list[bytes | None]:
        # No password and the empty one differ in PKCS#12 (RFC 7292 appendix B.1).
        return [None, b"", *dict.fromkeys(p for p in self.passwords if p)]


class OverBudget(Exception):
    """A file's time budget ran out: the scan records it as skipped and goes on."""

    def __init__(self, seconds: float, step: str) -> None:
        super().__init__(f"time budget of {seconds:g} s per file exceeded before {step}")
        self.seconds = seconds
        self.step = step


class Budget:
    """The time one file may take, checked before each costly step (a password tried, a key
    decrypted, a PEM block parsed). ``clock`` is injected so tests need not sleep."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds

    def check(self, step: str) -> None:
        if self._clock() > self._deadline:
            raise OverBudget(self.seconds, step)


@dataclass
class Material:
    """What one file held. ``locked`` with a reason when no password opened it, ``skipped``
    when it was not even tried (its key derivation would cost too much)."""

    format: str
    certificates: list[x509.Certificate] = field(default_factory=list)
    keys: list[FoundKey] = field(default_factory=list)
    locked: str | None = None
    malformed: str | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)


def looks_like_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, ... } (RFC 7292 section 4)."""
    try:
        outer = read_element(data, ber=True)
        first = read_element(data, outer.start, outer.end, ber=True)
    except DerError:
        return False
    return outer.tag == 0x30 and first.tag == 0x02 and data[first.start : first.end] == b"\x03"


def open_pkcs12(data: bytes, unlock: Unlock, budget: Budget) -> Material:
    material = Material("pkcs12")
    try:
        counts = iteration_counts(data)
    except DerError as exc:
        material.malformed = f"PKCS#12 structure does not parse: {exc}"
        return material
    highest, total = max(counts, default=0), sum(counts)
    if highest > unlock.max_iterations:
        material.skipped = (
            f"keystore skipped: iteration count {highest} exceeds the cap of {unlock.max_iterations}"
        )
        return material
    if total > 4 * unlock.max_iterations:
        material.skipped = (
            f"keystore skipped: {len(counts)} key derivations of {total} iterations in all exceed "
            f"the cap of {4 * unlock.max_iterations}"
        )
        return material
    candidates = unlock.candidates()
    for tried, password in enumerate(candidates, 1):
        budget.check(f"trying password {tried} of {len(candidates)}")
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
    material.locked = f"none of the {len(candidates)} passwords opens it (wrong password or damaged file)"
    return material


def _keystore_errors() -> tuple[type[Exception], ...]:
    import jks
    from pyasn1.error import PyAsn1Error  # type: ignore[import-untyped]

    # pyasn1's errors are no ValueError
    return (jks.util.KeystoreException, PyAsn1Error, ValueError, UnicodeDecodeError, KeyError, IndexError)


def open_java_keystore(data: bytes, unlock: Unlock, budget: Budget) -> Material:
    """Parse the structure without any password (no key is decrypted), then find the store
    password by its integrity hash (one SHA-1 each), then decrypt each private key whose
    iteration count is within the cap. pyjks' own ``try_decrypt_keys`` would decrypt every
    key with every password tried, before checking the hash: a planted JCEKS asking for two
    billion iterations would spin for days."""
    import jks

    fmt = "jceks" if data[:4] == JKS_MAGIC[1] else "jks"
    material = Material(fmt)
    try:
        store = jks.KeyStore.loads(data, None, try_decrypt_keys=False)
    except _keystore_errors() as exc:
        material.malformed = f"{fmt.upper()} keystore does not parse: {exc}"
        return material
    password = _store_password(data, unlock, budget)
    if password is None:
        material.notes.append("no password matched: integrity not verified, keys not decrypted")
    else:
        for alias, entry in store.private_keys.items():
            _decrypt(alias, entry, password, unlock, budget, material)
    _collect(store, material)
    return material


def _store_password(data: bytes, unlock: Unlock, budget: Budget) -> str | None:
    import jks

    candidates = [p for p in unlock.candidates() if p is not None]
    for tried, raw in enumerate(candidates, 1):
        budget.check(f"trying password {tried} of {len(candidates)}")
        password = raw.decode("utf-8", "replace")
        try:
            jks.KeyStore.loads(data, password, try_decrypt_keys=False)
        except _keystore_errors():
            continue
        return password
    return None


def _decrypt(
    alias: str, entry: jks.PrivateKeyEntry, password: str, unlock: Unlock, budget: Budget, material: Material
) -> None:
    # pyjks keeps the EncryptedPrivateKeyInfo (RFC 5208) of a key not yet decrypted in
    # ``_encrypted``; for JCEKS its PBEParameter holds the salt and the iteration count.
    encrypted: bytes = entry._encrypted
    try:
        iterations = max(iteration_counts(encrypted), default=0)
    except DerError:
        material.notes.append(f"key {alias!r} not decrypted: its protection does not parse")
        return
    if material.format == "jceks" and iterations > unlock.max_jceks_iterations:
        material.notes.append(
            f"key {alias!r} not decrypted: iteration count {iterations} exceeds the cap "
            f"of {unlock.max_jceks_iterations}"
        )
        return
    budget.check(f"decrypting key {alias!r}")
    try:
        entry.decrypt(password)
    except _keystore_errors():
        material.notes.append(f"key {alias!r} not decrypted: the store password does not open it")


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

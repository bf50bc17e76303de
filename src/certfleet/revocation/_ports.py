"""What the revocation core stores, and the storage interfaces it needs (``certfleet.store``
implements them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from certfleet.revocation._crl import CrlKind, RevokedEntry
from certfleet.revocation._ocsp_response import CertStatus
from certfleet.revocation._reasons import RevocationReason

__all__ = [
    "BlockedKeyRepository",
    "CachedResponse",
    "CrlState",
    "Revocation",
    "RevocationRepository",
    "RevocationStore",
    "SerialStatus",
    "StoredCrl",
    "StoredResponder",
]


@dataclass(frozen=True)
class Revocation:
    """A revoked serial. ``expires_at`` is when the certificate stops being valid (CRLs keep
    the entry until then, plus one CRL period); ``seq`` orders the revocations of one CA
    (delta CRLs list those after their base's ``seq``)."""

    serial: str
    issuer_ca_id: str
    revoked_at: dt.datetime
    reason: RevocationReason
    expires_at: dt.datetime
    invalidity_date: dt.datetime | None = None
    seq: int = 0

    def entry(self) -> RevokedEntry:
        return RevokedEntry(int(self.serial, 16), self.revoked_at, self.reason, self.invalidity_date)


@dataclass(frozen=True)
class CrlState:
    """Per-CA counters: ``revocation_seq`` grows with every revocation (a CRL covering less
    is stale), ``last_number`` is the last CRL number handed out (complete and delta CRLs
    share the sequence, RFC 5280 section 5.2.4), and the base of the current delta CRLs."""

    ca_id: str
    revocation_seq: int = 0
    last_number: int = 0
    base_number: int | None = None
    base_seq: int = 0
    base_at: dt.datetime | None = None


@dataclass(frozen=True)
class StoredCrl:
    ca_id: str
    kind: CrlKind
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    covered_seq: int
    der: bytes
    base_number: int | None = None


@dataclass(frozen=True)
class CachedResponse:
    """A pre-signed OCSP response for one serial and one CertID hash algorithm."""

    ca_id: str
    serial: str
    hash_algorithm: str
    status: CertStatus
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes


@dataclass(frozen=True)
class StoredResponder:
    """A delegated OCSP responder certificate; its key lives in the CA key backend."""

    ca_id: str
    key_ref: str
    certificate: x509.Certificate
    created_at: dt.datetime

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "x")


@dataclass(frozen=True)
class SerialStatus:
    """What the serials table knows: ``state`` is ``reserved`` or ``issued``."""

    issuer_ca_id: str
    state: str
    reserved_at: dt.datetime
    revocation: Revocation | None = None


class RevocationRepository(Protocol):
    """The write side, inside a unit of work (one transaction)."""

    def serial_status(self, serial: str) -> SerialStatus | None: ...

    def record_serial(self, serial: str, issuer_ca_id: str, at: dt.datetime, fingerprint_sha256: str) -> None:
        """Put a certificate we signed outside the issuance path (a CA or responder
        certificate) on the serials table, state issued."""
        ...

    def add(self, revocation: Revocation) -> Revocation:
        """Store a revocation and advance the CA's revocation_seq (which makes its CRLs
        stale) and the revocation generation (which makes every worker's in-memory OCSP
        answers stale), in this transaction; return it with its ``seq``. Raises
        AlreadyRevoked for a revoked serial."""
        ...

    def mark_certificate_revoked(self, record_id: int, at: dt.datetime, reason: RevocationReason) -> None: ...

    def invalidate_responses(self, serial: str) -> int:
        """Drop cached OCSP responses for ``serial``; return how many."""
        ...

    def invalidate_ca_responses(self, ca_id: str) -> int:
        """Drop every cached OCSP response of ``ca_id`` (its responder certificate was
        revoked: clients refuse what it signed); return how many."""
        ...

    def responders(self, ca_id: str) -> Sequence[StoredResponder]:
        """Responder certificates of ``ca_id``, newest first."""
        ...

    def add_responder(self, responder: StoredResponder) -> None: ...

    def drop_responder(self, key_ref: str) -> None: ...


class BlockedKeyRepository(Protocol):
    """Public keys revoked for keyCompromise, by SHA-256 of their SubjectPublicKeyInfo."""

    def block(self, spki_sha256: str, serial: str, at: dt.datetime) -> None:
        """Idempotent: blocking a blocked key keeps the first entry."""
        ...

    def is_blocked(self, spki_sha256: str) -> bool: ...


class RevocationStore(Protocol):
    """Where CRLs and OCSP responses are published from. Reads never take a write lock (the
    OCSP and CRL endpoints and the CRL builder run beside revocations); each write is its
    own short transaction."""

    def generation(self) -> int:
        """The revocation generation: it changes with every committed change that alters an
        OCSP answer, made by any process or node. Called on every OCSP request, so it must
        be nearly free, and it must see every change committed before it was called."""
        ...

    @property
    def generation_is_local(self) -> bool:
        """True when :meth:`generation` touches no network (SQLite: a PRAGMA on a local
        file), so an event loop may call it; else it is a round trip to the database."""
        ...

    def close(self) -> None:
        """Release what :meth:`generation` keeps open (the platform is closing)."""
        ...

    def crl(self, ca_id: str, kind: CrlKind) -> tuple[StoredCrl | None, CrlState]: ...

    def crl_entries(
        self, ca_id: str, *, delta: bool, expires_after: dt.datetime
    ) -> AbstractContextManager[tuple[CrlState, Iterator[RevokedEntry]]]:
        """One snapshot: the CA's state and its revocations covered by that state (with
        ``delta``, only those after the state's delta base) whose certificate expires after
        ``expires_after``, streamed (never all rows at once)."""
        ...

    def cached_response(self, ca_id: str, serial: str, hash_algorithm: str) -> CachedResponse | None:
        """The cached response, or None; a cached ``good`` is ignored once the serial has
        a revocation, checked in the same statement (so no race can serve it afterwards)."""
        ...

    def serial_status(self, ca_id: str, serial: str) -> SerialStatus | None: ...

    def responses_due(
        self, ca_id: str, produced_before: dt.datetime, limit: int
    ) -> Sequence[tuple[str, str]]:
        """(serial, hash algorithm) of cached responses with thisUpdate before the cut."""
        ...

    def allocate_crl_number(self, ca_id: str) -> int:
        """The next number of the CA's one CRL number sequence (RFC 5280 section 5.2.3)."""
        ...

    def save_crl(self, crl: StoredCrl, *, new_base: bool = False) -> bool:
        """Keep ``crl`` unless a stored one is newer (a higher number or a wider coverage);
        with ``new_base``, the complete CRL ``crl`` becomes the base of later delta CRLs."""
        ...

    def save_responses(self, responses: Sequence[CachedResponse], *, wait: bool = True) -> bool:
        """Keep ``responses`` in the shared cache; with ``wait=False`` they are not kept (and
        False is returned) when that would mean queueing behind another writer."""
        ...

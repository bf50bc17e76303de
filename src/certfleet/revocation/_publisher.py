"""Keeping each CA's complete and delta CRL current (RFC 5280 sections 5.2.4 and 5.2.6)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Generic

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.clock import Clock
from certfleet.errors import IntegrityError
from certfleet.revocation._crl import CrlKind, build_crl
from certfleet.revocation._issuers import CaT
from certfleet.revocation._ports import CrlState, RevocationStore, StoredCrl
from certfleet.revocation._published import Published, refresh_at
from certfleet.revocation._settings import RevocationSettings

__all__ = ["CrlPublisher", "delta_crl_url"]


def delta_crl_url(base_url: str, ca_id: str) -> str:
    """Where a CA's delta CRL is published, beside its complete CRL (``CaUrls.crl``)."""
    return f"{base_url}/crl/{ca_id}-delta.crl"


class CrlPublisher(Generic[CaT]):
    """Serves the stored CRL while it is current and rebuilds it when it is not.

    A CRL is stale once a revocation came after its snapshot (the store's revocation
    sequence moved past the CRL's ``covered_seq``) or a third of its validity has passed.
    Rebuilding on demand means the CRL served right after a revocation already lists it;
    the maintenance schedule rebuilds in the background so requests rarely wait.
    """

    def __init__(
        self,
        store: RevocationStore,
        ca_key: Callable[[CaT], CertificateIssuerPrivateKeyTypes],
        base_url: str,
        settings: RevocationSettings,
        clock: Clock,
    ) -> None:
        self._store = store
        self._ca_key = ca_key
        self._base_url = base_url
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._build_locks: dict[tuple[str, CrlKind], threading.Lock] = {}

    def validity(self, kind: CrlKind) -> dt.timedelta:
        return self._settings.crl_validity if kind is CrlKind.FULL else self._settings.delta_crl_validity

    def current(self, ca: CaT, kind: CrlKind = CrlKind.FULL) -> Published:
        stored, state = self._store.crl(ca.id, kind)
        if stored is None or self.stale(stored, state):
            with self._build_lock(ca.id, kind):
                stored, state = self._store.crl(ca.id, kind)  # built meanwhile by another thread?
                if stored is None or self.stale(stored, state):
                    stored = self._build(ca, kind)
        refresh = min(refresh_at(stored.this_update, self.validity(kind)), stored.next_update)
        return Published(stored.der, stored.this_update, stored.next_update, refresh, stored.number)

    def stale(self, stored: StoredCrl, state: CrlState) -> bool:
        if stored.covered_seq < state.revocation_seq:
            return True
        if self._clock.now() >= refresh_at(stored.this_update, self.validity(stored.kind)):
            return True
        return stored.kind is CrlKind.DELTA and stored.base_number != state.base_number

    def _build_lock(self, ca_id: str, kind: CrlKind) -> threading.Lock:
        with self._lock:
            return self._build_locks.setdefault((ca_id, kind), threading.Lock())

    def _build(self, ca: CaT, kind: CrlKind) -> StoredCrl:
        full = kind is CrlKind.FULL
        if not full and self._store.crl(ca.id, CrlKind.FULL)[1].base_number is None:
            self.current(ca, CrlKind.FULL)  # a delta needs a base: the first complete CRL
        now = self._clock.now().replace(microsecond=0)
        validity = self.validity(kind)
        # RFC 5280 section 5.3: an entry stays until it has been on one regular CRL issued
        # after the certificate expired; keeping it one CRL period past expiry ensures that.
        keep_after = now - self._settings.crl_validity
        key = self._ca_key(ca)
        with self._store.crl_entries(ca.id, delta=not full, expires_after=keep_after) as (snapshot, entries):
            if not full and snapshot.base_number is None:
                raise IntegrityError(f"CA {ca.id} has no delta CRL base after building its complete CRL")
            # Numbered after the snapshot is taken: of two concurrent builders, the one with
            # the higher number never holds the older snapshot unnoticed (save_crl refuses it).
            number = self._store.allocate_crl_number(ca.id)
            der = build_crl(
                issuer=ca.certificate,
                key=key,
                entries=entries,
                number=number,
                this_update=now,
                next_update=now + validity,
                freshest_crl_url=delta_crl_url(self._base_url, ca.id) if full else None,
                base_number=None if full else snapshot.base_number,
            )
        built = StoredCrl(
            ca.id,
            kind,
            number,
            now,
            now + validity,
            snapshot.revocation_seq,
            der,
            None if full else snapshot.base_number,
        )
        # Deltas list what changed since their base. Moving the base only every half CRL
        # period keeps a delta usable with any complete CRL a relying party fetched since.
        new_base = full and (
            snapshot.base_at is None or now - snapshot.base_at >= self._settings.crl_validity / 2
        )
        if self._store.save_crl(built, new_base=new_base):
            return built
        latest, _ = self._store.crl(ca.id, kind)
        return latest or built

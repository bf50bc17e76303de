"""The CAs revocation works for: found by id or issuer, and their signing keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.ca import CaCertificate
from certfleet.ca.keys import KeyBackend
from certfleet.errors import NotFound
from certfleet.revocation import (
    IssuerIndex,
)

__all__ = ["CaDirectory"]

_INDEX_TTL_SECONDS = 30.0


class CaDirectory:
    """Our CAs as revocation sees them: an index by issuer (reloaded at most once a second
    when an unknown issuer shows up, else every half minute) and their keys, loaded once."""

    def __init__(self, keys: KeyBackend, hierarchy: Callable[[], Sequence[CaCertificate]]) -> None:
        self._keys = keys
        self._hierarchy = hierarchy
        self._lock = threading.Lock()
        self._index_cache: tuple[float, IssuerIndex[CaCertificate]] | None = None
        self._ca_keys: dict[str, CertificateIssuerPrivateKeyTypes] = {}

    def index(self, *, refresh: bool = False) -> IssuerIndex[CaCertificate]:
        with self._lock:
            cached = self._index_cache
        if cached is not None and not refresh and time.monotonic() - cached[0] < _INDEX_TTL_SECONDS:
            return cached[1]
        if cached is not None and refresh and time.monotonic() - cached[0] < 1.0:
            return cached[1]  # at most one reload a second, however many unknown issuers arrive
        index = IssuerIndex(self._hierarchy())
        with self._lock:
            self._index_cache = (time.monotonic(), index)
        return index

    def fresh_index(self) -> IssuerIndex[CaCertificate]:
        """The index read now, whatever the cache holds: for revoking a CA certificate, which
        may have been created a moment ago (``ca rotate``, then ``ca compromise`` of it)."""
        index = IssuerIndex(self._hierarchy())
        with self._lock:
            self._index_cache = (time.monotonic(), index)
        return index

    def ca(self, ca_id: str) -> CaCertificate:
        ca = self.index().get(ca_id) or self.index(refresh=True).get(ca_id)
        if ca is None:
            raise NotFound(f"no CA {ca_id!r}")
        return ca

    def key(self, ca: CaCertificate) -> CertificateIssuerPrivateKeyTypes:
        with self._lock:
            key = self._ca_keys.get(ca.key_ref)
        if key is None:
            key = self._keys.load(ca.key_ref)
            with self._lock:
                self._ca_keys[ca.key_ref] = key
        return key

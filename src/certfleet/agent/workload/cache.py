"""The agent's SVID cache: one key and X509-SVID per registration entry, made and rotated
ahead of need, so the Workload API answers from memory and a server outage is ridden out.

Keys are generated here and never leave the agent (only CSRs do). An SVID is rotated at
half its lifetime (SPIRE's default): with the 1-hour default TTL the server may then be
unreachable for half an hour before any workload is left with an expired SVID. Everything
runs on one event loop; the blocking calls to the server and the key generation run in
worker threads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certfleet.agent.errors import AgentError
from certfleet.agent.workload.source import (
    EntrySet,
    IssuedJwt,
    RegistrationEntry,
    SvidRequest,
    SvidSource,
    TrustBundle,
)
from certfleet.clock import Clock
from certfleet.errors import CertfleetError

__all__ = ["BATCH", "SvidCache", "X509Svid"]

# SVIDs per call to the server (its limit). One call at a time: two in flight measured slower
# (89 against 117 SVIDs/s in bench/spiffe.py --server), the server's writes queue anyway.
BATCH = 500

_log = logging.getLogger("certfleet.agent.workload")


@dataclass(frozen=True)
class X509Svid:
    entry: RegistrationEntry
    chain_der: tuple[bytes, ...]
    key_der: bytes  # PKCS#8, unencrypted as the Workload API hands it over; in memory only
    not_before: dt.datetime
    not_after: dt.datetime

    @property
    def rotate_at(self) -> dt.datetime:
        return self.not_before + (self.not_after - self.not_before) / 2


def _new_requests(entries: Sequence[RegistrationEntry]) -> list[tuple[SvidRequest, bytes]]:
    """A fresh P-256 key and its CSR per entry (CPU-bound: called in a worker thread). The
    server sets the names itself; the CSR names the SPIFFE ID only for the reader's sake."""
    made = []
    for entry in entries:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(entry.spiffe_id)]), False
            )
            .sign(key, hashes.SHA256())
        )
        key_der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        pem = csr.public_bytes(serialization.Encoding.PEM).decode()
        made.append((SvidRequest(entry.id, pem), key_der))
    return made


class SvidCache:
    def __init__(self, source: SvidSource, clock: Clock, trust_domain: str | None = None) -> None:
        self._source = source
        self._clock = clock
        self._trust_domain = trust_domain
        self._refreshing = asyncio.Lock()
        self._changed = asyncio.Event()
        self.entries: EntrySet | None = None
        self.bundle: TrustBundle | None = None
        self._bundle_at: dt.datetime | None = None
        self._svids: dict[str, X509Svid] = {}
        self._by_selector: dict[str, list[RegistrationEntry]] = {}
        self._jwts: dict[tuple[str, tuple[str, ...]], tuple[IssuedJwt, dt.datetime]] = {}
        self.last_error: str | None = None

    # -- what the Workload API reads ------------------------------------------------------

    def changed(self) -> asyncio.Event:
        """Set at the next change of SVIDs, entries or bundle (take it before reading)."""
        return self._changed

    def matching(self, selectors: frozenset[str]) -> list[RegistrationEntry]:
        """The entries all of whose selectors the workload has (SPIRE's subset match; an
        entry without selectors matches nothing). Found through an index by selector: an
        agent with 10,000 entries must not compare each of them on every call."""
        found: dict[str, RegistrationEntry] = {}
        for selector in selectors:
            for entry in self._by_selector.get(selector, ()):
                if entry.id not in found and entry.selectors <= selectors:
                    found[entry.id] = entry
        return sorted(found.values(), key=lambda e: (e.spiffe_id, e.id))

    def x509_svids(self, entries: Sequence[RegistrationEntry]) -> list[X509Svid]:
        """The live SVIDs of ``entries`` (an expired one is never handed out)."""
        now = self._clock.now()
        found = (self._svids.get(e.id) for e in entries)
        return [s for s in found if s is not None and s.not_after > now]

    def now(self) -> dt.datetime:
        return self._clock.now()

    def __len__(self) -> int:
        return len(self._svids)

    async def jwt_svid(self, entry: RegistrationEntry, audience: Sequence[str]) -> IssuedJwt:
        """A JWT-SVID for ``audience``: the cached one until half its lifetime, then a new
        one; while the server is unreachable, the cached one as long as it is valid."""
        key = (entry.id, tuple(sorted(set(audience))))
        now = self._clock.now()
        cached = self._jwts.get(key)
        if cached is not None and now < cached[1] + (cached[0].expires_at - cached[1]) / 2:
            return cached[0]
        try:
            issued = await asyncio.to_thread(self._source.issue_jwt, entry.id, list(key[1]))
        except CertfleetError:
            if cached is not None and cached[0].expires_at > now:
                return cached[0]
            raise
        if len(self._jwts) > 10_000:
            self._jwts.clear()
        self._jwts[key] = (issued, now)
        return issued

    # -- keeping it current ---------------------------------------------------------------

    def next_due(self, interval: dt.timedelta) -> dt.datetime:
        """When the next pass is needed: the next rotation, or ``interval`` from now."""
        due = self._clock.now() + interval
        for svid in self._svids.values():
            due = min(due, svid.rotate_at)
        return due

    async def refresh(self) -> None:
        """One pass: entries and bundle from the server, then an SVID for every entry that
        has none, whose SVID reached half its lifetime, or whose entry changed. A server that
        cannot be reached leaves everything as it was (the next pass retries)."""
        async with self._refreshing:
            try:
                await self._refresh()
                self.last_error = None
            except CertfleetError as exc:
                self.last_error = exc.detail
                _log.warning("SPIFFE: keeping the cached SVIDs: %s", exc.detail)

    async def _refresh(self) -> None:
        changed = False
        entries = await asyncio.to_thread(self._source.entries)
        if self._trust_domain is not None and entries.trust_domain != self._trust_domain:
            raise AgentError(
                f"the server's trust domain is {entries.trust_domain}, "
                f"but this agent is configured for {self._trust_domain}"
            )
        if entries != self.entries:
            self.entries = entries
            self._by_selector = {}
            for entry in entries.entries:
                for selector in entry.selectors:
                    self._by_selector.setdefault(selector, []).append(entry)
            live = {e.id for e in entries.entries}
            for gone in set(self._svids) - live:
                del self._svids[gone]
            changed = True
        now = self._clock.now()
        if (
            self.bundle is None
            or self._bundle_at is None
            or now - self._bundle_at >= dt.timedelta(seconds=self.bundle.refresh_hint_seconds)
            or changed
        ):
            bundle = await asyncio.to_thread(self._source.bundle)
            self._bundle_at = now
            if bundle != self.bundle:
                self.bundle, changed = bundle, True
        due = [e for e in entries.entries if self._due(e, now)]
        if changed:
            self._notify()
        # One server call per batch, each batch cached (and pushed) as soon as it arrives: the
        # first workloads need not wait for the ten-thousandth SVID, and an outage half-way
        # keeps what was issued before it.
        issued = 0
        try:
            for start in range(0, len(due), BATCH):
                issued += await self._issue(due[start : start + BATCH])
        finally:
            if issued:
                _log.info("SPIFFE: %d SVIDs issued or rotated, %d cached", issued, len(self._svids))

    async def _issue(self, due: Sequence[RegistrationEntry]) -> int:
        made = await asyncio.to_thread(_new_requests, due)
        keys = {request.entry_id: key for request, key in made}
        by_id = {e.id: e for e in due}
        issued = await asyncio.to_thread(self._source.issue_x509, [r for r, _ in made])
        for svid in issued:
            owner = by_id.get(svid.entry_id)
            if owner is not None and svid.entry_id in keys:
                self._svids[owner.id] = X509Svid(
                    owner, svid.chain_der, keys[svid.entry_id], svid.not_before, svid.not_after
                )
        if issued:
            self._notify()
        return len(issued)

    def _due(self, entry: RegistrationEntry, now: dt.datetime) -> bool:
        svid = self._svids.get(entry.id)
        if svid is None or now >= svid.rotate_at:
            return True
        was = svid.entry
        return (was.spiffe_id, was.dns_names, was.ttl_seconds) != (
            entry.spiffe_id,
            entry.dns_names,
            entry.ttl_seconds,
        )

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

"""Revocation: one service behind the CLI, the REST API and ACME revokeCert, plus the CRLs
and OCSP responses that publish what it records. Each reason to change has its module:
revoking (:mod:`._revocation_revoke`), the CAs and their keys (:mod:`._revocation_cas`),
responder certificates (:mod:`._revocation_responders`); this one publishes and maintains."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from certfleet.ca import CaCertificate
from certfleet.ca.keys import KeyBackend
from certfleet.clock import Clock
from certfleet.errors import CertfleetError
from certfleet.revocation import (
    AlreadyRevoked,
    CrlKind,
    CrlPublisher,
    OcspResponder,
    Published,
    RevocationSettings,
    RevocationStore,
    refresh_at,
)
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.services._revocation_cas import CaDirectory
from certfleet.services._revocation_responders import ResponderCertificates
from certfleet.services._revocation_revoke import CertificateRevocation, RevocationOutcome, normalize_serial

__all__ = [
    "AlreadyRevoked",
    "MaintenanceReport",
    "Published",
    "RevocationOutcome",
    "RevocationService",
    "normalize_serial",
]


@dataclass
class MaintenanceReport:
    """One maintenance round: what was refreshed, and one line per CA that failed."""

    crls_built: int = 0
    responses_signed: int = 0
    errors: list[str] = field(default_factory=list)


class RevocationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: RevocationStore,
        keys: KeyBackend,
        hierarchy: Callable[[], Sequence[CaCertificate]],
        base_url: str,
        settings: RevocationSettings,
        clock: Clock,
    ) -> None:
        self._store = store
        self.settings = settings
        self._clock = clock
        self._cas = CaDirectory(keys, hierarchy)
        self._responders = ResponderCertificates(uow, keys, self._cas, settings, clock)
        revocation = CertificateRevocation(uow, self._cas, self._responders, clock)
        self.revoke = revocation.revoke
        self.revoke_serial = revocation.revoke_serial
        # Per CA: the revocation generation and the time up to which its CRLs were found
        # fresh by a maintenance round; until either moves, a round reads none of them.
        self._crls_fresh: dict[str, tuple[int, dt.datetime]] = {}
        self._publisher: CrlPublisher[CaCertificate] = CrlPublisher(
            store, self._cas.key, base_url, settings, clock
        )
        self._responder: OcspResponder[CaCertificate] = OcspResponder(
            store,
            lambda refresh: self._cas.index(refresh=refresh),
            self._responders.signer,
            settings,
            clock,
            # A revocation anywhere may have been of a responder certificate: look again.
            on_generation_change=self._responders.forget,
        )

    # -- publishing -------------------------------------------------------------------------

    def crl(self, ca_id: str, kind: CrlKind = CrlKind.FULL) -> Published:
        """The CA's current complete (or delta) CRL, rebuilt first when a revocation made it
        stale or it is due, so the CRL served right after a revocation already lists it."""
        return self._publisher.current(self._cas.ca(ca_id), kind)

    def ocsp(self, request_der: bytes) -> Published:
        """A DER OCSPResponse for a DER OCSPRequest (see :class:`OcspResponder` for the
        answers to unknown serials, foreign issuers and malformed requests)."""
        return self._responder.respond(request_der)

    def ocsp_remembered(self, request_der: bytes) -> Published | None:
        """The answer to this exact request from this worker's memory when nothing was
        revoked since it was signed (by any process or node), else None: then call
        :meth:`ocsp`. One PRAGMA on SQLite, one single-row read on PostgreSQL (shared by
        the requests that arrive while it runs)."""
        return self._responder.remembered(request_der)

    @property
    def ocsp_memory_is_local(self) -> bool:
        """True when :meth:`ocsp_remembered` does no network I/O (SQLite), so the
        plain-HTTP listener may call it on its event loop; on PostgreSQL it calls
        :meth:`ocsp` (memory first too) in a thread instead."""
        return self._store.generation_is_local

    def close(self) -> None:
        """Release the connections the OCSP generation check keeps per thread."""
        self._store.close()

    # -- maintenance ------------------------------------------------------------------------

    def maintain(self) -> MaintenanceReport:
        """One round of the schedule ``certfleet serve`` runs: rebuild stale CRLs, rotate
        responder certificates and re-sign ageing OCSP responses (a new certificate's
        answer is signed on its first request, not here). A
        failing CA is reported and never stops the others."""
        report = MaintenanceReport()
        now = self._clock.now()
        # Read before the CRLs: a revocation committed after this read is seen next round.
        generation = self._store.generation()
        for ca in self._cas.index(refresh=True).cas():
            try:
                report.crls_built += self._refresh_crls(ca, generation, now)
                self._responders.retire(ca, now)
                report.responses_signed += self._responder.presign(ca, now)
            except CertfleetError as exc:
                report.errors.append(f"CA {ca.id}: {exc.detail}")
        return report

    def _refresh_crls(self, ca: CaCertificate, generation: int, now: dt.datetime) -> int:
        """Build ``ca``'s full and delta CRLs when stale; returns how many were built.

        A CRL goes stale by time (a third into its validity, or its nextUpdate) or by a
        revocation of the CA's (which bumps the revocation generation in its transaction;
        a delta's new base comes from one or the other). So once a round found both fresh,
        the rounds before the earlier of their refresh times read nothing while the
        generation stays; the CRL endpoints still check staleness on every request."""
        fresh = self._crls_fresh.get(ca.id)
        if fresh is not None and fresh[0] == generation and now < fresh[1]:
            return 0
        built = 0
        until: dt.datetime | None = None
        for kind in (CrlKind.FULL, CrlKind.DELTA):
            # One read finds a CRL that is still fresh; only a stale or missing one goes
            # through the publisher (which reads it again under its build lock).
            stored, state = self._store.crl(ca.id, kind)
            if stored is None or self._publisher.stale(stored, state):
                published = self._publisher.current(ca, kind)
                built += int(published.number != (stored.number if stored else None))
                refresh = published.refresh_at or now  # always set for a CRL
            else:
                refresh = min(
                    refresh_at(stored.this_update, self._publisher.validity(kind)), stored.next_update
                )
            until = refresh if until is None else min(until, refresh)
        if until is not None:
            self._crls_fresh[ca.id] = (generation, until)
        return built

"""Recording trust-store readings: each root once in the inventory (source ``discovered``,
found by fingerprint), one location per store that trusts it on the host; a store read
again without a root marks that location gone. A store that could not be read changes
nothing (its roots are not known to be gone)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from certfleet.audit import AuditLog
from certfleet.clock import Clock
from certfleet.discovery import fingerprint
from certfleet.discovery.anchors import AnchorSighting, StorePlace
from certfleet.discovery.records import ScanError
from certfleet.discovery.truststores import StoreKind, StoreReading
from certfleet.errors import InvalidInput
from certfleet.services._discovery_record import ScanRecorder
from certfleet.services._ports import UnitOfWorkFactory

__all__ = ["TrustStoreRecorder", "TrustStoresRecorded", "agent_readings"]


@dataclass(frozen=True)
class TrustStoresRecorded:
    host: str
    stores_read: int
    stores_failed: int
    roots: int
    roots_new: int
    locations_gone: int
    errors: tuple[ScanError, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "host": self.host,
            "stores_read": self.stores_read,
            "stores_failed": self.stores_failed,
            "roots": self.roots,
            "roots_new": self.roots_new,
            "locations_gone": self.locations_gone,
            "errors": [e.to_dict() for e in self.errors],
        }


class TrustStoreRecorder:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def record(
        self, host: str, readings: Sequence[StoreReading], *, team: str | None, actor: str
    ) -> TrustStoresRecorded:
        now: dt.datetime = self._clock.now()
        errors = [ScanError(r.path, "unreadable-store", r.error or "") for r in readings if not r.ok]
        good = [r for r in readings if r.ok]
        chains = [((r.path, r.kind.value), [(cert, fingerprint(cert)) for cert in r.roots]) for r in good]
        with self._uow() as uow:
            ids, added = ScanRecorder.upsert_certificates(uow, chains, team, now, errors)
            sightings: list[AnchorSighting] = []
            for reading in good:
                place = StorePlace(host, reading.kind.value, reading.path)
                for cert in reading.roots:
                    certificate_id = ids.get(fingerprint(cert))
                    if certificate_id is not None:
                        sightings.append(AnchorSighting(certificate_id, place, now))
            uow.trust_anchors.record(sightings)
            places = [StorePlace(host, r.kind.value, r.path) for r in good]
            gone = uow.trust_anchors.mark_gone_except(
                places, {(s.certificate_id, s.place) for s in sightings}, now
            )
            roots = len({s.certificate_id for s in sightings})
            AuditLog(uow.audit, self._clock).record(
                actor,
                "discovery.trust-stores",
                host,
                {
                    "stores": [f"{r.kind.value}:{r.path}" for r in readings][:50],
                    "failed": len(errors),
                    "roots": roots,
                    "roots_new": len(added),
                    "locations_gone": gone,
                },
            )
        return TrustStoresRecorded(
            host, len(good), len(readings) - len(good), roots, len(added), gone, tuple(errors)
        )


def agent_readings(roots: Mapping[str, str], stores: Sequence[Mapping[str, Any]]) -> list[StoreReading]:
    """An agent's report (``certfleet.agent.trust_stores.stores_body``) as store readings;
    every root is checked against the fingerprint it is sent under."""
    certificates: dict[str, x509.Certificate] = {}
    for fp, der_b64 in roots.items():
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(der_b64, validate=True))
        except (ValueError, binascii.Error):
            raise InvalidInput(f"root {fp[:16]}... is not a base64 DER certificate") from None
        if fingerprint(cert) != fp.lower():
            raise InvalidInput(f"root {fp[:16]}... does not have the SHA-256 fingerprint it is sent under")
        certificates[fp.lower()] = cert
    readings: list[StoreReading] = []
    for index, store in enumerate(stores):
        try:
            kind = StoreKind(store["kind"])
        except ValueError:
            raise InvalidInput(f"stores[{index}]: unknown store kind {store['kind']!r}") from None
        missing = [fp for fp in store["roots"] if fp.lower() not in certificates]
        if missing:
            raise InvalidInput(
                f"stores[{index}] lists root {missing[0][:16]}... that the report does not carry"
            )
        readings.append(
            StoreReading(
                kind,
                store["path"],
                store.get("format") or "",
                tuple(certificates[fp.lower()] for fp in store["roots"]),
                store.get("error"),
            )
        )
    return readings

"""Reading and importing the inventory."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from certfleet.access import Principal
from certfleet.audit import AuditLog, CertificateRef
from certfleet.clock import Clock
from certfleet.errors import CertfleetError, NotFound
from certfleet.inventory import CertificateQuery, CertificateRecord, Source
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.x509 import CertificateFacts, load_certificates

__all__ = ["ImportOutcome", "InventoryService"]


@dataclass(frozen=True)
class ImportOutcome:
    """One outcome per source: ``added`` and ``duplicates`` count certificates."""

    source: str
    added: int = 0
    duplicates: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class InventoryService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def query(self, query: CertificateQuery) -> Sequence[CertificateRecord]:
        with self._uow(read_only=True) as uow:
            return uow.certificates.query(query, self._clock.now())

    def find(self, key: str, principal: Principal | None = None) -> CertificateRecord:
        """Look up by serial (hex) or SHA-256 fingerprint. Another team's certificate is
        reported as not found, so a token cannot probe what exists elsewhere."""
        text = key.strip().lower().replace(":", "")
        with self._uow(read_only=True) as uow:
            found: list[CertificateRecord] = []
            if len(text) == 64:
                record = uow.certificates.get_by_fingerprint(text)
                if record:
                    found.append(record)
            if not found:
                found.extend(uow.certificates.get_by_serial(text.lstrip("0") or "0"))
        visible = [r for r in found if principal is None or principal.can_see_team(r.team)]
        if not visible:
            raise NotFound(f"no certificate with serial or fingerprint {key!r}")
        return visible[0]

    def import_sources(
        self, sources: Iterable[tuple[str, bytes]], *, actor: str, team: str | None = None
    ) -> list[ImportOutcome]:
        """``inventory import`` (local and ``POST /api/v1/inventory/import``): one outcome per
        ``(name, bytes)`` source; a bad source is reported in its outcome, never fatal."""
        return [self.import_bytes(data, name, actor=actor, team=team) for name, data in sources]

    def import_bytes(self, data: bytes, source: str, *, actor: str, team: str | None = None) -> ImportOutcome:
        try:
            certs = load_certificates(data, source=source)
        except CertfleetError as exc:
            return ImportOutcome(source, error=exc.detail)
        now = self._clock.now()
        added = duplicates = 0
        with self._uow() as uow:
            log = AuditLog(uow.audit, self._clock)
            for cert in certs:
                facts = CertificateFacts.of(cert)
                existing = uow.certificates.get_by_fingerprint(facts.fingerprint_sha256)
                if existing is not None:
                    assert existing.id is not None
                    uow.certificates.touch(existing.id, now)
                    duplicates += 1
                    continue
                record = CertificateRecord.from_facts(facts, source=Source.IMPORTED, seen_at=now, team=team)
                uow.certificates.add(record)
                log.record(
                    actor,
                    "certificate.imported",
                    CertificateRef(facts.serial, facts.issuer).subject,
                    {
                        "fingerprint_sha256": facts.fingerprint_sha256,
                        "source": source,
                    },
                )
                added += 1
        return ImportOutcome(source, added, duplicates)

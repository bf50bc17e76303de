"""The issuance ledger of X509-SVIDs: the same two batched writes as every certificate
(serials before signing; record, serial state, audit and event after), plus the aggregation
that keeps the inventory at one record per registration entry.

Each SVID is recorded by the standard ledger in the same transaction; then, per entry, the
new record replaces the entry's previous one (deleted: its serial stays in ``serials``, so
OCSP, the CRL and ``revoke`` still know it), the entry's counter grows and the serial joins
``spiffe_svids`` (pruned of expired SVIDs as it goes), which is what counts and revokes an
entry's live SVIDs. 10,000 workloads rotating hourly thus keep 10,000 inventory rows, not
240,000 a day.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import cast

from cryptography import x509
from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update

from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.issuance import IssuedEntry
from certfleet.store._issuance_ledger import SqlIssuanceLedger
from certfleet.store._spiffe_models import SpiffeEntryRow, SpiffeSvidRow
from certfleet.store.models import CertificateNameRow, CertificateRow

__all__ = ["ENTRY_TAG_PREFIX", "SqlSvidLedger"]

ENTRY_TAG_PREFIX = "spiffe-entry:"

_ENTRIES = cast(Table, SpiffeEntryRow.__table__)
_SVIDS = cast(Table, SpiffeSvidRow.__table__)
_CERTS = cast(Table, CertificateRow.__table__)
_NAMES = cast(Table, CertificateNameRow.__table__)

_TALLY = (
    update(_ENTRIES)
    .where(_ENTRIES.c.id == bindparam("b_id"))
    .values(
        certificate_id=bindparam("b_certificate_id"),
        svids_issued=_ENTRIES.c.svids_issued + bindparam("b_count"),
        last_issued_at=bindparam("b_at"),
    )
)


def entry_id_of(record: CertificateRecord) -> str | None:
    return next(
        (t.removeprefix(ENTRY_TAG_PREFIX) for t in record.tags if t.startswith(ENTRY_TAG_PREFIX)), None
    )


def _with_spiffe_id(record: CertificateRecord) -> CertificateRecord:
    """The inventory lists DNS names and IP addresses as SANs; an SVID's identity is its URI
    SAN, so it goes first, where a search by SPIFFE ID finds it."""
    certificate = x509.load_der_x509_certificate(record.der)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return record
    uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
    return dataclasses.replace(record, sans=(*uris, *record.sans))


class SqlSvidLedger(SqlIssuanceLedger):
    def _record(self, conn: Connection, entries: Sequence[IssuedEntry]) -> list[CertificateRecord]:
        entries = [dataclasses.replace(e, record=_with_spiffe_id(e.record)) for e in entries]
        stored = super()._record(conn, entries)
        latest: dict[str, CertificateRecord] = {}
        counts: dict[str, int] = {}
        svids = []
        for record in stored:
            entry_id = entry_id_of(record)
            if entry_id is None:
                continue
            latest[entry_id] = record
            counts[entry_id] = counts.get(entry_id, 0) + 1
            svids.append(
                {
                    "serial": record.serial,
                    "entry_id": entry_id,
                    "issued_at": record.first_seen,
                    "not_after": record.not_after,
                }
            )
        if not latest:
            return stored
        keep = {r.id for r in latest.values()}
        replaced = set(
            conn.scalars(
                select(_ENTRIES.c.certificate_id).where(
                    _ENTRIES.c.id.in_(sorted(latest)), _ENTRIES.c.certificate_id.is_not(None)
                )
            )
        )
        replaced |= {r.id for r in stored if entry_id_of(r) in latest and r.id not in keep}
        now = max(r.first_seen for r in latest.values())
        conn.execute(
            _TALLY,
            [
                {"b_id": e, "b_certificate_id": r.id, "b_count": counts[e], "b_at": r.first_seen}
                for e, r in latest.items()
            ],
        )
        if replaced:
            gone = sorted(i for i in replaced if i is not None and i not in keep)
            conn.execute(delete(_NAMES).where(_NAMES.c.certificate_id.in_(gone)))
            conn.execute(delete(_CERTS).where(_CERTS.c.id.in_(gone)))
        conn.execute(delete(_SVIDS).where(_SVIDS.c.not_after <= now))
        conn.execute(insert(_SVIDS), svids)
        return stored

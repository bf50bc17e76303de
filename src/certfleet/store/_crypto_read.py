"""The cryptographic inventory's reads (:class:`certfleet.inventory.crypto.CryptoInventoryReader`):
three Core statements in one read transaction, whatever the inventory's size: the in-use
certificates' columns, their discovery locations not gone, and the agents' latest successful
deployments. No ORM objects, and the DER only when the CBOM asks for it.

Listed apart, never a team's: agents' own mTLS identities (certfleet's plumbing, source
``agent-identity``) and the public roots the hosts' trust stores hold (discovered only
there, source ``trust-anchor``). A team's reads and the exposure counts leave them out; the
unscoped list shows them without a team (see services/crypto_report.py)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, case, func, select

from certfleet.inventory import Source, Status
from certfleet.inventory.crypto import AlgorithmCount, CryptoCertificate, CryptoPlace
from certfleet.lifecycle.jobs import AGENT_IDENTITY_TAG, MANAGED_SOURCES
from certfleet.store._agent_models import AgentDeploymentRow
from certfleet.store._database import Database
from certfleet.store._discovery_models import CertificateLocationRow
from certfleet.store._trust_anchors import TrustAnchorLocationRow
from certfleet.store.models import CertificateRow

__all__ = ["SqlCryptoInventory"]

_C = CertificateRow.__table__.c
_L = CertificateLocationRow.__table__.c
_D = AgentDeploymentRow.__table__.c
_T = TrustAnchorLocationRow.__table__.c
AGENT_IDENTITY_SOURCE = "agent-identity"
TRUST_ANCHOR_SOURCE = "trust-anchor"
# tags_json is a JSON list of strings: the quoted tag matches that tag only.
_IDENTITY = _C.tags_json.like(f'%"{AGENT_IDENTITY_TAG}"%')
_ANCHOR = (_C.source == Source.DISCOVERED.value) & _C.id.in_(
    select(_T.certificate_id).where(_T.gone_at.is_(None))
)


_APART = {(True, False): AGENT_IDENTITY_SOURCE, (False, True): TRUST_ANCHOR_SOURCE}


def _in_use(now: dt.datetime, team: str | None, *, apart: bool = False) -> list[ColumnElement[bool]]:
    # In use: stored active and notAfter not passed (RFC 5280 4.1.2.5: notAfter inclusive).
    where: list[ColumnElement[bool]] = [_C.status == Status.ACTIVE.value, _C.not_after >= now]
    if team is not None:
        where.append(_C.team == team)
    if team is not None or not apart:  # the ones listed apart (module docstring)
        where += [~_IDENTITY, ~_ANCHOR]
    return where


def _agent_places(host: str, files_json: str, endpoint: str | None, sni: str | None) -> list[CryptoPlace]:
    try:
        files: Any = json.loads(files_json)
    except ValueError:
        files = {}
    paths = sorted({str(p) for p in files.values()}) if isinstance(files, dict) else []
    places = [CryptoPlace("agent", f"{host}:{path}") for path in paths] or [CryptoPlace("agent", host)]
    if endpoint:
        places.append(CryptoPlace("endpoint", endpoint, sni or ""))
    return places


class SqlCryptoInventory:
    def __init__(self, database: Database) -> None:
        self._database = database

    def certificates(
        self, now: dt.datetime, team: str | None, *, with_der: bool = False
    ) -> Sequence[CryptoCertificate]:
        where = _in_use(now, team, apart=True)
        columns = [
            _C.id,
            _C.serial,
            _C.fingerprint_sha256,
            _C.subject,
            _C.issuer,
            _C.issuer_ca_id,
            _C.not_before,
            _C.not_after,
            _C.key_algorithm,
            _C.key_size,
            _C.signature_algorithm,
            _C.profile,
            _C.source,
            _C.status,
            _C.team,
            _IDENTITY.label("identity"),
            _ANCHOR.label("anchor"),
        ]
        if with_der:
            columns.append(_C.der)
        certificates = select(*columns).where(*where).order_by(_C.id)
        in_use = select(_C.id).where(*where)
        locations = (
            select(_L.certificate_id, _L.kind, _L.location, _L.sni)
            .where(_L.gone_at.is_(None), _L.certificate_id.in_(in_use))
            .order_by(_L.certificate_id, _L.kind, _L.location, _L.sni)
        )
        newest = select(func.max(_D.id)).group_by(_D.agent_name, _D.name)
        deployments = (
            select(_D.certificate_id, _D.agent_name, _D.files_json, _D.endpoint, _D.sni)
            .where(_D.id.in_(newest), _D.status == "deployed", _D.certificate_id.in_(in_use))
            .order_by(_D.certificate_id, _D.agent_name, _D.name)
        )
        places: dict[int, list[CryptoPlace]] = defaultdict(list)
        with self._database.session(read_only=True) as s:
            rows = s.execute(certificates).all()
            for cert_id, kind, location, sni in s.execute(locations).all():
                places[int(cert_id)].append(CryptoPlace(str(kind), str(location), sni or ""))
            for cert_id, agent, files_json, endpoint, sni in s.execute(deployments).all():
                places[int(cert_id)] += _agent_places(str(agent), str(files_json), endpoint, sni)
        found: list[CryptoCertificate] = []
        for row in rows:
            m = row._mapping
            cert_id = int(m["id"])
            found.append(
                CryptoCertificate(
                    id=cert_id,
                    serial=m["serial"],
                    fingerprint_sha256=m["fingerprint_sha256"],
                    subject=m["subject"],
                    issuer=m["issuer"],
                    issuer_ca_id=m["issuer_ca_id"],
                    not_before=m["not_before"],
                    not_after=m["not_after"],
                    key_algorithm=m["key_algorithm"],
                    key_size=int(m["key_size"]),
                    signature_algorithm=m["signature_algorithm"],
                    profile=m["profile"],
                    source=_APART.get((bool(m["identity"]), bool(m["anchor"])), m["source"]),
                    status=m["status"],
                    team=None if m["identity"] or m["anchor"] else m["team"],
                    places=tuple(dict.fromkeys(places.get(cert_id, ()))),
                    der=bytes(m["der"]) if with_der else None,
                )
            )
        return found

    def algorithm_counts(self, now: dt.datetime, team: str | None) -> Sequence[AlgorithmCount]:
        # Managed as rotation campaigns select: from certfleet's own CA (REST, ACME, agents,
        # SCEP, EST).
        issued = _C.source.in_(MANAGED_SOURCES) & _C.issuer_ca_id.is_not(None)
        managed = func.sum(case((issued, 1), else_=0))
        stmt = (
            select(_C.team, _C.key_algorithm, _C.key_size, _C.signature_algorithm, func.count(), managed)
            .where(*_in_use(now, team))
            .group_by(_C.team, _C.key_algorithm, _C.key_size, _C.signature_algorithm)
        )
        with self._database.session(read_only=True) as s:
            return [
                AlgorithmCount(t, str(alg), int(size), str(sig), int(n), int(m or 0))
                for t, alg, size, sig, n, m in s.execute(stmt).all()
            ]

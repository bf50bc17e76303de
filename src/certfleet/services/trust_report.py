"""The CA consolidation report: which issuers the fleet uses, which roots its hosts trust,
which of those roots anchor nothing (candidates to remove), which issuers policy does not
approve, and which roots expire within the horizon with what would break.

"Chains to" is decided by building the path (``discovery.trust``) from each present leaf
against the roots trusted somewhere, with the CA certificates met in scans as the pool of
intermediates: a leaf whose server forgot its intermediate still counts for its root.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from certfleet.clock import Clock, iso
from certfleet.discovery import CertificatePool, ChainAnalyzer, fingerprint, lenient_parsing, spki_sha256
from certfleet.discovery.anchors import AnchorLocation, LeafSighting
from certfleet.errors import InvalidInput
from certfleet.inventory import CertificateRecord
from certfleet.policy import Context, Policy
from certfleet.services._discovery_judge import MAX_POOL
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.services.policy import record_candidate

__all__ = ["DEFAULT_HORIZON_DAYS", "TrustReport", "TrustReportService"]

DEFAULT_HORIZON_DAYS = 90
_NO_TEAM = "(no team)"


@dataclass
class _Root:
    record: CertificateRecord
    locations: list[AnchorLocation] = field(default_factory=list)
    leaves: set[int] = field(default_factory=set)
    leaf_locations: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint_sha256": self.record.fingerprint_sha256,
            "subject": self.record.subject,
            "not_after": iso(self.record.not_after),
            "hosts": sorted({loc.place.host for loc in self.locations}),
            "locations": [loc.to_dict() for loc in self.locations],
            "leaves": len(self.leaves),
        }


@dataclass(frozen=True)
class TrustReport:
    generated_at: dt.datetime
    horizon_days: int
    team: str | None
    issuers: list[dict[str, Any]]
    roots: list[dict[str, Any]]
    unused_roots: list[dict[str, Any]]
    unapproved_issuers: list[dict[str, Any]]
    expiring_roots: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": iso(self.generated_at),
            "horizon_days": self.horizon_days,
            "team": self.team,
            "issuers": self.issuers,
            "roots": self.roots,
            "unused_roots": self.unused_roots,
            "unapproved_issuers": self.unapproved_issuers,
            "expiring_roots": self.expiring_roots,
        }


def _unapproved(policy: Policy | None, record: CertificateRecord) -> str | None:
    """The reason an ``allowed_issuers`` check of a rule that concerns ``record`` refuses it."""
    if policy is None:
        return None
    candidate = record_candidate(record)
    for rule in policy.rules:
        if not rule.applies_to(candidate, Context.INVENTORY):
            continue
        for check in rule.checks:
            if check.kind == "allowed_issuers":
                decision = check.evaluate(candidate)
                if not decision.allowed:
                    return f"{rule.name}: {decision.reason}"
    return None


class TrustReportService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def report(
        self, policy: Policy | None, *, horizon_days: int = DEFAULT_HORIZON_DAYS, team: str | None = None
    ) -> TrustReport:
        if not 0 <= horizon_days <= 36500:
            raise InvalidInput("horizon must be between 0 and 36500 days")
        with self._uow(read_only=True) as uow:
            anchors = uow.trust_anchors.present()
            records = uow.trust_anchors.records([a.certificate_id for a in anchors])
            leaves = uow.trust_anchors.present_leaves()
            known = uow.locations.known_intermediates(MAX_POOL)
        with lenient_parsing():
            return self._build(anchors, records, leaves, known, policy, horizon_days, team)

    def _build(
        self,
        anchors: Sequence[AnchorLocation],
        records: dict[int, CertificateRecord],
        leaves: Sequence[LeafSighting],
        known: Sequence[bytes],
        policy: Policy | None,
        horizon_days: int,
        team: str | None,
    ) -> TrustReport:
        now = self._clock.now()
        roots: dict[int, _Root] = {}
        for location in anchors:
            record = records.get(location.certificate_id)
            if record is not None:
                roots.setdefault(location.certificate_id, _Root(record)).locations.append(location)
        certs = {cid: root.record.certificate() for cid, root in roots.items()}
        by_identity: dict[str, int] = {}
        for cid, cert in certs.items():
            by_identity[fingerprint(cert)] = cid
            by_identity[f"{cert.subject.rfc4514_string()}|{spki_sha256(cert.public_key())}"] = cid
        pool = CertificatePool()
        for der in known:
            try:
                pool.add(x509.load_der_x509_certificate(der))
            except ValueError:
                continue
        analyzer = ChainAnalyzer(CertificatePool(certs.values()), pool)
        issuers: dict[tuple[str, str], set[int]] = defaultdict(set)
        unapproved: dict[tuple[str, str], tuple[set[int], str]] = {}
        where: dict[int, set[str]] = defaultdict(set)
        distinct: dict[int, CertificateRecord] = {}
        for sighting in leaves:
            record = sighting.record
            if record.id is None or (team is not None and record.team != team):
                continue
            where[record.id].add(sighting.location)
            distinct[record.id] = record
        for cid, record in distinct.items():
            owner = record.team or _NO_TEAM
            issuers[(owner, record.issuer)].add(cid)
            reason = _unapproved(policy, record)
            if reason is not None:
                unapproved.setdefault((owner, record.issuer), (set(), reason))[0].add(cid)
            verdict = analyzer.analyse([record.certificate()])
            if not verdict.trusted:
                continue
            for cert in verdict.path:
                root_id = by_identity.get(fingerprint(cert)) or by_identity.get(
                    f"{cert.subject.rfc4514_string()}|{spki_sha256(cert.public_key())}"
                )
                if root_id is not None:
                    roots[root_id].leaves.add(cid)
                    roots[root_id].leaf_locations |= where[cid]
                    break
        ordered = sorted(roots.values(), key=lambda r: (r.record.subject, r.record.fingerprint_sha256))
        horizon = now + dt.timedelta(days=horizon_days)
        return TrustReport(
            generated_at=now,
            horizon_days=horizon_days,
            team=team,
            issuers=[
                {"team": owner, "issuer": issuer, "leaves": len(ids)}
                for (owner, issuer), ids in sorted(issuers.items())
            ],
            roots=[r.to_dict() for r in ordered],
            unused_roots=[r.to_dict() for r in ordered if not r.leaves],
            unapproved_issuers=[
                {"team": owner, "issuer": issuer, "leaves": len(ids), "reason": reason}
                for (owner, issuer), (ids, reason) in sorted(unapproved.items())
            ],
            expiring_roots=[
                {**r.to_dict(), "would_break": sorted(r.leaf_locations)}
                for r in ordered
                if r.record.not_after <= horizon
            ],
        )

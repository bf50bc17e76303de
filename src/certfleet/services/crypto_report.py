"""The cryptographic inventory: every in-use certificate and key certfleet knows (issued,
imported, discovered on networks and disks, deployed by agents, and its own CAs), grouped by
key algorithm, key size, signature algorithm and quantum vulnerability, weak ones first.

One report feeds ``certfleet crypto report`` (table, JSON, CSV, CycloneDX), ``GET
/api/v1/crypto/report`` and the dashboard's "Cryptographic exposure" page; the exposure
counts (:meth:`CryptoReportService.exposure`) are one grouped query, cheap enough for a page
view. A team's report holds that team's certificates only (certfleet's CAs are shared and
listed in the unscoped report).

Each agent's own mTLS identity (EC P-256) is certfleet's plumbing like its CAs, not the
agent's team's certificate: the channel between agent and server runs on Python's ssl, i.e.
the host's OpenSSL (3.0 on Debian 12), which cannot do ML-DSA, so no campaign can move it
yet. It is listed in the unscoped report and CBOM with the owner "certfleet (agent
identity)" and that reason, and left out of every team's report and exposure counts."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from certfleet.ca import CaCertificate
from certfleet.clock import Clock, iso
from certfleet.inventory.crypto import (
    Algorithm,
    CryptoCertificate,
    CryptoInventoryReader,
    CryptoPlace,
    SignatureAlgorithm,
    classify_key,
    classify_signature,
)
from certfleet.x509 import CertificateFacts

__all__ = [
    "AGENT_IDENTITY_OWNER",
    "AGENT_IDENTITY_REASON",
    "AGENT_IDENTITY_SOURCE",
    "APART",
    "CA_SOURCE",
    "CryptoEntry",
    "CryptoReport",
    "CryptoReportService",
    "ExposureCount",
    "migration_command",
    "report_rows",
]

CA_SOURCE = "ca"  # an entry for one of certfleet's own CA certificates
AGENT_IDENTITY_SOURCE = "agent-identity"  # an agent's mTLS identity (store/_crypto_read.py)
AGENT_IDENTITY_OWNER = "certfleet (agent identity)"
AGENT_IDENTITY_REASON = (
    "certfleet's own agent-server channel (Python's ssl on OpenSSL 3.0, which cannot do ML-DSA); "
    "not counted in a team's exposure"
)
TRUST_ANCHOR_SOURCE = "trust-anchor"  # a root seen only in hosts' trust stores
TRUST_ANCHOR_OWNER = "its CA (in hosts' trust stores)"
TRUST_ANCHOR_REASON = "a root the hosts trust, not a team's certificate: no campaign replaces it"
# source -> (owner, why it is not in a team's exposure); certfleet's CAs have no note
APART = {
    CA_SOURCE: ("certfleet", None),
    AGENT_IDENTITY_SOURCE: (AGENT_IDENTITY_OWNER, AGENT_IDENTITY_REASON),
    TRUST_ANCHOR_SOURCE: (TRUST_ANCHOR_OWNER, TRUST_ANCHOR_REASON),
}
# The built-in post-quantum profile a migration moves to (the first user of ML-DSA).
PQ_PROFILE = "internal-mtls-pq"
ROW_COLUMNS = [
    "weakness",
    "algorithm",
    "signature_algorithm",
    "quantum_vulnerable",
    "subject",
    "team",
    "source",
    "locations",
    "not_after",
    "chain",
]


def migration_command(algorithm: str, team: str | None) -> str:
    """The rotation campaign that moves ``team``'s certificates of one algorithm to ML-DSA."""
    selection = f"key_type={algorithm}" + (f",team={team}" if team else "")
    return f"certfleet rotate --select '{selection}' --to-profile {PQ_PROFILE}"


@dataclass(frozen=True)
class CryptoEntry:
    """One certificate (and the key it certifies) with its classification and CA chain
    (``chain``: certfleet CA names from the issuer up to the root; empty for another CA's)."""

    certificate: CryptoCertificate
    key: Algorithm
    signature: SignatureAlgorithm
    chain: tuple[str, ...]

    @property
    def weaknesses(self) -> tuple[str, ...]:
        return tuple(w for w in (self.key.weakness, self.signature.weakness) if w)

    @property
    def quantum_vulnerable(self) -> bool | None:
        if self.key.quantum_vulnerable or self.signature.quantum_vulnerable:
            return True
        if self.key.quantum_vulnerable is None or self.signature.quantum_vulnerable is None:
            return None
        return False

    def sort_key(self) -> tuple[Any, ...]:
        # Weak first, then quantum-vulnerable (unknown between), then by algorithm and expiry.
        rank = {True: 0, None: 1, False: 2}[self.quantum_vulnerable]
        return (not self.weaknesses, rank, self.key.label, self.certificate.not_after, self.certificate.id)

    def to_dict(self) -> dict[str, Any]:
        c = self.certificate
        return {
            "serial": c.serial,
            "fingerprint_sha256": c.fingerprint_sha256,
            "subject": c.subject,
            "issuer": c.issuer,
            "issuer_ca_id": c.issuer_ca_id,
            "algorithm": self.key.label,
            "key_algorithm": self.key.family,
            "key_size": c.key_size,
            "parameter_set": self.key.parameter_set,
            "signature_algorithm": c.signature_algorithm,
            "quantum_vulnerable": self.quantum_vulnerable,
            "weak": bool(self.weaknesses),
            "weaknesses": list(self.weaknesses),
            "team": c.team,
            "owner": APART[c.source][0] if c.source in APART else c.team,
            "source": c.source,
            "note": APART[c.source][1] if c.source in APART else None,
            "profile": c.profile,
            "not_before": iso(c.not_before),
            "not_after": iso(c.not_after),
            "locations": [{"kind": p.kind, "location": p.location, "sni": p.sni} for p in c.places],
            "chain": list(self.chain),
        }


@dataclass(frozen=True)
class CryptoReport:
    generated_at: dt.datetime
    team: str | None
    entries: tuple[CryptoEntry, ...]

    def groups(self) -> list[dict[str, Any]]:
        """Counts per (algorithm, signature algorithm), in the entries' order (weak first)."""
        counts: Counter[tuple[str, str]] = Counter()
        first: dict[tuple[str, str], CryptoEntry] = {}
        for entry in self.entries:
            key = (entry.key.label, entry.certificate.signature_algorithm)
            counts[key] += 1
            first.setdefault(key, entry)
        return [
            {
                "algorithm": e.key.label,
                "key_algorithm": e.key.family,
                "key_size": e.certificate.key_size,
                "signature_algorithm": e.certificate.signature_algorithm,
                "quantum_vulnerable": e.quantum_vulnerable,
                "nist_quantum_security_level": min(e.key.nist_quantum_level, e.signature.nist_quantum_level),
                "weak": bool(e.weaknesses),
                "weaknesses": list(e.weaknesses),
                "count": counts[key],
            }
            for key, e in first.items()
        ]

    def summary(self) -> dict[str, int]:
        leaves = [e for e in self.entries if e.certificate.source not in APART]
        apart = Counter(e.certificate.source for e in self.entries if e.certificate.source in APART)
        return {
            "certificates": len(leaves),
            "ca_certificates": apart[CA_SOURCE],
            "agent_identities": apart[AGENT_IDENTITY_SOURCE],
            "trust_anchors": apart[TRUST_ANCHOR_SOURCE],
            "quantum_vulnerable": sum(1 for e in leaves if e.quantum_vulnerable),
            "quantum_safe": sum(1 for e in leaves if e.quantum_vulnerable is False),
            "weak": sum(1 for e in leaves if e.weaknesses),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON shared by ``--format json`` and ``GET /api/v1/crypto/report``."""
        return {
            "generated_at": iso(self.generated_at),
            "team": self.team,
            "summary": self.summary(),
            "groups": self.groups(),
            "certificates": [e.to_dict() for e in self.entries],
        }


def report_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The flat rows of the table and CSV, from the JSON form (local or a server's answer)."""
    spelled = {True: "yes", False: "no", None: "unknown"}
    rows = []
    for c in document["certificates"]:
        places = [f"{p['location']} (SNI {p['sni']})" if p["sni"] else p["location"] for p in c["locations"]]
        rows.append(
            {
                "weakness": "; ".join(c["weaknesses"]),
                "algorithm": c["algorithm"],
                "signature_algorithm": c["signature_algorithm"],
                "quantum_vulnerable": spelled[c["quantum_vulnerable"]],
                "subject": c["subject"],
                "team": c["team"] or c.get("owner") or "",
                "source": c["source"],
                "locations": "; ".join(places),
                "not_after": c["not_after"],
                "chain": " > ".join(c["chain"]) or c["issuer"],
            }
        )
    return rows


@dataclass(frozen=True)
class ExposureCount:
    """The dashboard's line: a team's in-use certificates of one key algorithm, ``managed``
    of them issued by certfleet's CA (a campaign replaces those; the others, imported or
    discovered, are replaced where they came from)."""

    team: str | None
    algorithm: str
    quantum_vulnerable: bool | None
    weak: bool
    count: int
    managed: int = 0

    @property
    def migration(self) -> str | None:
        if not self.quantum_vulnerable or not self.managed:
            return None
        return migration_command(self.algorithm, self.team)


def _ca_certificate(ca: CaCertificate) -> CryptoCertificate:
    facts = CertificateFacts.of(ca.certificate)
    return CryptoCertificate(
        id=0,
        serial=facts.serial,
        fingerprint_sha256=facts.fingerprint_sha256,
        subject=facts.subject,
        issuer=facts.issuer,
        issuer_ca_id=ca.parent_id,
        not_before=facts.not_before,
        not_after=facts.not_after,
        key_algorithm=facts.key_algorithm,
        key_size=facts.key_size,
        signature_algorithm=facts.signature_algorithm,
        profile=None,
        source=CA_SOURCE,
        status="active",
        team=None,
        places=(CryptoPlace("ca", f"certfleet CA {ca.name} ({ca.role}, key in {ca.key_backend})"),),
        der=facts.der,
    )


class CryptoReportService:
    def __init__(
        self, reader: CryptoInventoryReader, hierarchy: Callable[[], Sequence[CaCertificate]], clock: Clock
    ) -> None:
        self._reader = reader
        self._hierarchy = hierarchy
        self._clock = clock

    def report(self, team: str | None = None, *, with_der: bool = False) -> CryptoReport:
        """``team``'s certificates (every team's and certfleet's CAs when None); ``with_der``
        keeps each certificate's DER (the CBOM names its subject public key)."""
        now = self._clock.now()
        cas = list(self._hierarchy())
        by_id = {ca.id: ca for ca in cas}

        def chain(ca_id: str | None) -> tuple[str, ...]:
            names: list[str] = []
            while ca_id in by_id and len(names) < 8:
                names.append(by_id[ca_id].name)
                ca_id = by_id[ca_id].parent_id
            return tuple(names)

        certificates = list(self._reader.certificates(now, team, with_der=with_der))
        if team is None:
            certificates += [_ca_certificate(ca) for ca in cas if ca.not_after >= now]
        entries = [
            CryptoEntry(
                c,
                classify_key(c.key_algorithm, c.key_size),
                classify_signature(c.signature_algorithm),
                chain(c.issuer_ca_id),
            )
            for c in certificates
        ]
        entries.sort(key=CryptoEntry.sort_key)
        return CryptoReport(now, team, tuple(entries))

    def exposure(self, team: str | None = None) -> list[ExposureCount]:
        """In-use certificates per team and key algorithm (one grouped query): quantum-
        vulnerable and weak first, then the largest counts."""
        merged: Counter[tuple[str | None, str, bool | None, bool]] = Counter()
        managed: Counter[tuple[str | None, str, bool | None, bool]] = Counter()
        for row in self._reader.algorithm_counts(self._clock.now(), team):
            key = classify_key(row.key_algorithm, row.key_size)
            signature = classify_signature(row.signature_algorithm)
            vulnerable = key.quantum_vulnerable or signature.quantum_vulnerable
            weak = bool(key.weakness or signature.weakness)
            merged[(row.team, key.label, vulnerable, weak)] += row.count
            managed[(row.team, key.label, vulnerable, weak)] += row.managed
        counts = [ExposureCount(t, a, v, w, n, managed[(t, a, v, w)]) for (t, a, v, w), n in merged.items()]
        counts.sort(
            key=lambda e: (e.team or "", not e.weak, e.quantum_vulnerable is not True, -e.count, e.algorithm)
        )
        return counts

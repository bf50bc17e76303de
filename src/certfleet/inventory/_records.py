from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from certfleet.clock import iso

if TYPE_CHECKING:
    from cryptography import x509

    from certfleet.x509 import CertificateFacts

# cryptography is imported by the one method that parses (about 0.15-0.3 s): listing the
# inventory needs only these values.

__all__ = ["CertificateRecord", "CertificateSummary", "Source", "Status"]


class Status(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


class Source(enum.StrEnum):
    ISSUED = "issued"
    IMPORTED = "imported"
    DISCOVERED = "discovered"
    SPIFFE = "spiffe"  # X509-SVIDs: one record per registration entry, its live SVID
    SCEP = "scep"  # enrolled over SCEP (RFC 8894), with the challenge's team
    EST = "est"  # enrolled over EST (RFC 7030), with the credential's team


@dataclass(frozen=True)
class CertificateRecord:
    """One certificate in the inventory.

    ``status`` is what is stored (active, revoked, superseded); :meth:`effective_status`
    derives ``expired`` from the clock, so no job has to flip rows at midnight.
    """

    serial: str
    fingerprint_sha256: str
    subject: str
    common_name: str | None
    sans: tuple[str, ...]
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    key_algorithm: str
    key_size: int
    signature_algorithm: str
    source: Source
    status: Status
    first_seen: dt.datetime
    last_seen: dt.datetime
    der: bytes
    issuer_ca_id: str | None = None
    profile: str | None = None
    team: str | None = None
    tags: tuple[str, ...] = ()
    revoked_at: dt.datetime | None = None
    revocation_reason: str | None = None
    id: int | None = field(default=None, compare=False)

    @classmethod
    def from_facts(
        cls,
        facts: CertificateFacts,
        *,
        source: Source,
        seen_at: dt.datetime,
        issuer_ca_id: str | None = None,
        profile: str | None = None,
        team: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> CertificateRecord:
        return cls(
            serial=facts.serial,
            fingerprint_sha256=facts.fingerprint_sha256,
            subject=facts.subject,
            common_name=facts.common_name,
            sans=facts.sans,
            issuer=facts.issuer,
            not_before=facts.not_before,
            not_after=facts.not_after,
            key_algorithm=facts.key_algorithm,
            key_size=facts.key_size,
            signature_algorithm=facts.signature_algorithm,
            source=source,
            status=Status.ACTIVE,
            first_seen=seen_at,
            last_seen=seen_at,
            der=facts.der,
            issuer_ca_id=issuer_ca_id,
            profile=profile,
            team=team,
            tags=tags,
        )

    def effective_status(self, now: dt.datetime) -> Status:
        return _effective_status(self.status, self.not_after, now)

    def certificate(self) -> x509.Certificate:
        from cryptography import x509

        return x509.load_der_x509_certificate(self.der)

    def with_id(self, record_id: int) -> CertificateRecord:
        return replace(self, id=record_id)

    def to_dict(self, now: dt.datetime) -> dict[str, Any]:
        """The JSON form shared by the CLI and the REST API."""
        return {
            "serial": self.serial,
            "fingerprint_sha256": self.fingerprint_sha256,
            "subject": self.subject,
            "common_name": self.common_name,
            "sans": list(self.sans),
            "issuer": self.issuer,
            "issuer_ca_id": self.issuer_ca_id,
            "not_before": iso(self.not_before),
            "not_after": iso(self.not_after),
            "key_algorithm": self.key_algorithm,
            "key_size": self.key_size,
            "signature_algorithm": self.signature_algorithm,
            "profile": self.profile,
            "source": self.source.value,
            "status": self.effective_status(now).value,
            "team": self.team,
            "tags": list(self.tags),
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "revoked_at": iso(self.revoked_at),
            "revocation_reason": self.revocation_reason,
        }


def _effective_status(status: Status, not_after: dt.datetime, now: dt.datetime) -> Status:
    # RFC 5280 section 4.1.2.5: the validity period includes notAfter itself.
    if status is Status.ACTIVE and not_after < now:
        return Status.EXPIRED
    return status


class CertificateSummary(NamedTuple):
    """What a listing shows of a certificate, read without the rest of its record: a
    10,000-row ``certfleet inventory list`` then builds no full records (their DER, tags and
    timestamps cost most of its time)."""

    id: int
    serial: str
    subject: str
    sans: tuple[str, ...]
    issuer: str
    not_after: dt.datetime
    source: Source
    status: Status
    team: str | None

    def effective_status(self, now: dt.datetime) -> Status:
        return _effective_status(self.status, self.not_after, now)

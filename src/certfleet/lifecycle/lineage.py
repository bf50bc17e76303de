"""Lineage: which certificate replaced which.

A certificate has at most one successor (a unique constraint, so two workers can never both
record one) and at most one predecessor. Renewal keeps the public key; a rotation may change
the key or the issuing CA; an ACME client's replacement order (RFC 9773 ``replaces``) is
recorded when a campaign notices it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from certfleet.inventory import CertificateRecord

__all__ = ["LineageKind", "LineageLink", "LineageRepository"]


class LineageKind(enum.StrEnum):
    RENEWAL = "renewal"  # same key, names, profile; by the renewal job
    ROTATION = "rotation"  # by a campaign: same key, maybe another CA
    REKEY = "rekey"  # by a campaign: a new key (from its holder or generated)
    ACME = "acme"  # an ACME client's replacement order


@dataclass(frozen=True)
class LineageLink:
    certificate_id: int  # the new certificate
    supersedes_id: int  # the one it replaces
    kind: LineageKind
    created_at: dt.datetime
    actor: str
    campaign_id: str | None = None


class LineageRepository(Protocol):
    def add(self, link: LineageLink) -> None:
        """Record the link and mark the old certificate superseded (if still active). Raises
        Conflict when the old certificate already has a successor."""
        ...

    def successor(self, certificate_id: int) -> int | None: ...

    def predecessor(self, certificate_id: int) -> int | None: ...

    def certificate(self, certificate_id: int) -> CertificateRecord | None: ...

    def unlinked_with_name(self, after_id: int, name: str, limit: int) -> Sequence[CertificateRecord]:
        """Certificates certfleet issued after ``after_id`` carrying ``name`` that replace
        nothing yet: where a crashed worker's already issued replacement is found again."""
        ...

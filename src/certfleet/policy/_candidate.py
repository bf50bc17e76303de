"""What the rules look at: one certificate, requested or already in the inventory."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

__all__ = ["Candidate", "Context"]


class Context(enum.StrEnum):
    """Where a policy is evaluated: on a request before signing, or over the inventory."""

    ISSUANCE = "issuance"
    INVENTORY = "inventory"


@dataclass(frozen=True)
class Candidate:
    """A certificate as the rules see it.

    ``names`` are the DNS names (lower case) and IP addresses (compressed) it is for;
    ``key_type`` a label such as ``ec-p256`` or ``rsa-2048``; ``validity`` notAfter minus
    notBefore; ``issuer`` the issuer DN in RFC 4514 form and ``issuer_ca_id`` the id of the
    certfleet CA that signs it, if any; ``ekus`` dotted OIDs; ``label`` names the candidate in
    a report (a serial, or the first name of a request).
    """

    names: tuple[str, ...]
    key_type: str
    validity: dt.timedelta
    profile: str | None = None
    team: str | None = None
    issuer: str = ""
    issuer_ca_id: str | None = None
    signature_algorithm: str | None = None
    ekus: tuple[str, ...] = ()
    label: str = ""
    spiffe_ids: tuple[str, ...] = ()  # the URI SAN of an X509-SVID, or a registration entry
    # notBefore (aware UTC), for rules selected by issuance date (the CA/B Forum's validity
    # schedule); None for a registration entry, which no such rule concerns.
    not_before: dt.datetime | None = None

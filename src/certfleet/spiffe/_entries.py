"""Registration entries: which SPIFFE ID a workload gets, from which agent, when its
selectors match (SPIRE's registration model)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

from certfleet.spiffe._ids import SpiffeId, TrustDomain
from certfleet.spiffe._selectors import Selector
from certfleet.spiffe.errors import InvalidEntry

__all__ = [
    "DEFAULT_SVID_TTL",
    "MAX_SVID_TTL",
    "MIN_SVID_TTL",
    "RegistrationEntry",
    "agent_spiffe_id",
    "check_dns_name",
    "check_ttl",
    "new_entry_id",
    "parse_ttl",
]

# One hour, as SPIRE's default X509-SVID TTL: agents rotate at half-life, so an SVID copied
# off a host is worth at most half an hour more; at most a day (the x509-svid profile's cap).
DEFAULT_SVID_TTL = dt.timedelta(hours=1)
MIN_SVID_TTL = dt.timedelta(minutes=5)
MAX_SVID_TTL = dt.timedelta(days=1)
_TTL = re.compile(r"^(\d{1,6})([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def parse_ttl(text: str) -> dt.timedelta:
    """``3600``, ``90s``, ``30m``, ``1h`` or ``1d``, between 5 minutes and a day."""
    match = _TTL.match(text.strip().lower())
    if match is None:
        raise InvalidEntry(f"TTL {text!r} is not a duration such as 3600, 30m, 1h or 1d")
    ttl = dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    return check_ttl(ttl)


def check_ttl(ttl: dt.timedelta) -> dt.timedelta:
    if not MIN_SVID_TTL <= ttl <= MAX_SVID_TTL:
        raise InvalidEntry(
            f"TTL of {int(ttl.total_seconds())} s is outside 300 s to 86400 s (5 minutes to a day)"
        )
    return ttl


def agent_spiffe_id(trust_domain: TrustDomain, host: str) -> SpiffeId:
    """An agent's own SPIFFE ID, ``spiffe://TD/agent/HOST`` (its enrolment is node attestation)."""
    return SpiffeId.from_segments(trust_domain, "agent", host.lower())


def new_entry_id() -> str:
    return secrets.token_hex(8)


def check_dns_name(name: str) -> str:
    name = name.strip().lower().rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise InvalidEntry(f"DNS name {name!r} is not a valid host name")
    return name


@dataclass(frozen=True)
class RegistrationEntry:
    """An entry: the agent ``parent_id`` hands ``spiffe_id`` to a workload whose attested
    selectors include every one of ``selectors``, as SVIDs living ``ttl``."""

    id: str
    spiffe_id: SpiffeId
    parent_id: SpiffeId
    selectors: tuple[Selector, ...]
    ttl: dt.timedelta = DEFAULT_SVID_TTL
    dns_names: tuple[str, ...] = ()
    team: str | None = None
    created_at: dt.datetime | None = None
    created_by: str = ""

    def __post_init__(self) -> None:
        if not self.selectors:
            raise InvalidEntry("an entry needs at least one selector (it would match every workload)")
        if self.spiffe_id.trust_domain != self.parent_id.trust_domain:
            raise InvalidEntry(
                f"{self.spiffe_id} and its parent {self.parent_id} are in different trust domains"
            )
        if not self.spiffe_id.path:
            raise InvalidEntry(f"{self.spiffe_id} names the trust domain itself, not a workload")
        if self.spiffe_id.segments[:1] == ("agent",):
            raise InvalidEntry(f"{self.spiffe_id}: the /agent/ path is reserved for agents' own IDs")
        if self.parent_id.segments[:1] != ("agent",) or len(self.parent_id.segments) != 2:
            raise InvalidEntry(f"parent {self.parent_id} is not an agent's ID (spiffe://TD/agent/HOST)")
        check_ttl(self.ttl)
        object.__setattr__(self, "dns_names", tuple(dict.fromkeys(check_dns_name(n) for n in self.dns_names)))
        object.__setattr__(self, "selectors", tuple(sorted(set(self.selectors))))

    @property
    def parent_host(self) -> str:
        return self.parent_id.segments[1]

    def to_dict(self) -> dict[str, Any]:
        """The agent-facing shape (issue 15 contract)."""
        return {
            "id": self.id,
            "spiffe_id": str(self.spiffe_id),
            "parent_id": str(self.parent_id),
            "selectors": [str(s) for s in self.selectors],
            "ttl_seconds": int(self.ttl.total_seconds()),
            "dns_names": list(self.dns_names),
        }

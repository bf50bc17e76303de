"""SPIFFE workload identity: SPIFFE IDs, registration entries, selectors and SVID templates."""

from __future__ import annotations

from certfleet.spiffe._ids import MAX_SPIFFE_ID_LENGTH, SpiffeId, TrustDomain
from certfleet.spiffe._selectors import UNIX_KEYS, Selector, entry_matches, parse_selectors
from certfleet.spiffe.errors import InvalidSelector, InvalidSpiffeId

__all__ = [
    "MAX_SPIFFE_ID_LENGTH",
    "UNIX_KEYS",
    "InvalidSelector",
    "InvalidSpiffeId",
    "Selector",
    "SpiffeId",
    "TrustDomain",
    "entry_matches",
    "parse_selectors",
]

"""What the Workload API needs from the certfleet server, as values and one narrow protocol.

The consumer owns the interface (step-ca's rule): :class:`SvidSource` is what the agent's
SVID cache calls; :class:`certfleet.agent.workload.remote.ServerSvidSource` implements it over
the server's agent-facing HTTPS endpoints, and tests implement it in-process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "EntrySet",
    "IssuedJwt",
    "IssuedX509",
    "RegistrationEntry",
    "SvidRequest",
    "SvidSource",
    "TrustBundle",
]


@dataclass(frozen=True)
class RegistrationEntry:
    id: str
    spiffe_id: str
    selectors: frozenset[str]
    ttl_seconds: int
    dns_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntrySet:
    """The entries parented by this agent; ``revision`` changes whenever the set does."""

    trust_domain: str
    agent_id: str
    revision: int
    entries: tuple[RegistrationEntry, ...]


@dataclass(frozen=True)
class SvidRequest:
    entry_id: str
    csr_pem: str


@dataclass(frozen=True)
class IssuedX509:
    entry_id: str
    spiffe_id: str
    chain_der: tuple[bytes, ...]  # the leaf first, then intermediates up to (not) the root
    not_before: dt.datetime
    not_after: dt.datetime


@dataclass(frozen=True)
class IssuedJwt:
    spiffe_id: str
    token: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class TrustBundle:
    trust_domain: str
    x509_authorities_der: tuple[bytes, ...]
    jwt_keys: Mapping[str, Any] = field(default_factory=lambda: {"keys": []})  # a JWKS
    refresh_hint_seconds: int = 300


class SvidSource(Protocol):
    """Every method raises :class:`certfleet.agent.errors.ServerUnreachable` when the server
    cannot be reached: the cache then keeps serving what it has."""

    def entries(self) -> EntrySet: ...

    def issue_x509(self, requests: Sequence[SvidRequest]) -> list[IssuedX509]: ...

    def issue_jwt(self, entry_id: str, audience: Sequence[str]) -> IssuedJwt: ...

    def bundle(self) -> TrustBundle: ...

"""What the server records about host agents, and the storage port it needs.

An agent is named after its host (a DNS name): the name is the CN and the only DNS SAN of
its mTLS client certificate (profile ``tls-client``), the way Puppet names its agents. The
name in the certificate is informative only: the server authenticates an agent by the
SHA-256 fingerprint of a client certificate it issued to it, recorded at issuance.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from certfleet.access import NamePattern, Principal, Scope
from certfleet.clock import iso
from certfleet.errors import InvalidInput
from certfleet.x509 import BadName, SubjectName

# The public names are listed in certfleet.agents.__all__.

_CERT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_agent_name(raw: str) -> str:
    """An agent is named after its host: a DNS name, lowercased, no wildcard."""
    try:
        name = SubjectName.parse(raw)
    except BadName as exc:
        raise InvalidInput(f"agent host name {raw!r} is not a valid DNS name: {exc.detail}") from exc
    if name.kind != "dns" or name.is_wildcard:
        raise InvalidInput(f"agent host name {raw!r} must be a DNS host name (no IP address, no wildcard)")
    return name.value


def check_certificate_name(raw: str) -> str:
    """The ``name`` of a certificate in the agent's configuration (letters, digits, ``._-``)."""
    if not _CERT_NAME.match(raw):
        raise InvalidInput(f"certificate name {raw[:70]!r} must be 1 to 64 letters, digits, '.', '_' or '-'")
    return raw


class AgentStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class DeploymentStatus(enum.StrEnum):
    DEPLOYED = "deployed"  # files switched, service reloaded, health check passed
    FAILED = "failed"  # could not deploy; the previous files were never replaced
    ROLLED_BACK = "rolled_back"  # reload or health check failed; previous files restored


@dataclass(frozen=True)
class JoinToken:
    id: str
    host: str
    team: str | None
    allow_names: tuple[NamePattern, ...]
    secret_hash: str
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None


@dataclass(frozen=True)
class Agent:
    """``allow_names`` bound what the agent may have issued (default: its own host name)."""

    name: str
    team: str | None
    allow_names: tuple[NamePattern, ...]
    status: AgentStatus
    enrolled_at: dt.datetime
    revoked_at: dt.datetime | None = None
    last_seen: dt.datetime | None = None

    def principal(self) -> Principal:
        """What the agent may issue: the issue scope, limited to its name patterns."""
        return Principal(f"agent:{self.name}", self.team, Scope.ISSUE, self.allow_names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "team": self.team,
            "allow_names": [p.text for p in self.allow_names],
            "status": self.status.value,
            "enrolled_at": iso(self.enrolled_at),
            "revoked_at": iso(self.revoked_at),
            "last_seen": iso(self.last_seen),
        }


@dataclass(frozen=True)
class AgentIdentity:
    fingerprint_sha256: str
    agent_name: str
    serial: str
    issued_at: dt.datetime
    not_after: dt.datetime


@dataclass(frozen=True)
class ManagedCertificate:
    agent_name: str
    name: str
    profile: str
    names: tuple[str, ...]
    spki_sha256: str
    fingerprint_sha256: str
    issued_at: dt.datetime


@dataclass(frozen=True)
class Deployment:
    """One deployment as an agent reported it. ``files`` maps a target kind (key, cert,
    fullchain, ...) to its path on the agent's host; ``endpoint`` is ``host:port``."""

    agent_name: str
    name: str
    certificate_id: int | None
    fingerprint_sha256: str
    serial: str
    status: DeploymentStatus
    files: Mapping[str, str]
    endpoint: str | None
    sni: str | None
    issuer: str
    detail: str
    reported_at: dt.datetime
    id: int | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.agent_name,
            "name": self.name,
            "serial": self.serial,
            "fingerprint_sha256": self.fingerprint_sha256,
            "status": self.status.value,
            "files": dict(self.files),
            "paths": sorted(set(self.files.values())),
            "endpoint": self.endpoint,
            "sni": self.sni,
            "issuer": self.issuer,
            "detail": self.detail,
            "reported_at": iso(self.reported_at),
        }


class AgentRepository(Protocol):
    def add_join_token(self, token: JoinToken) -> None: ...

    def get_join_token(self, token_id: str) -> JoinToken | None: ...

    def consume_join_token(self, token_id: str, at: dt.datetime) -> bool:
        """Mark used if unused and unexpired at ``at``, in one conditional UPDATE; False if
        another request used it first or it expired."""
        ...

    def put_agent(self, agent: Agent) -> None:
        """Insert, or replace the agent of that name (a re-enrolment)."""
        ...

    def get_agent(self, name: str) -> Agent | None: ...

    def list_agents(self) -> Sequence[Agent]: ...

    def revoke_agent(self, name: str, at: dt.datetime) -> bool:
        """False when unknown or already revoked."""
        ...

    def touch_agent(self, name: str, at: dt.datetime) -> None: ...

    def add_identity(self, identity: AgentIdentity) -> None: ...

    def get_identity(self, fingerprint_sha256: str) -> AgentIdentity | None: ...

    def identities_of(self, agent_name: str) -> Sequence[AgentIdentity]: ...

    def get_managed(self, agent_name: str, name: str) -> ManagedCertificate | None: ...

    def put_managed(self, managed: ManagedCertificate) -> None: ...

    def managed_of(self, agent_name: str) -> Sequence[ManagedCertificate]: ...

    def add_deployment(self, deployment: Deployment) -> Deployment: ...

    def deployments(self, agent_name: str | None, limit: int) -> Sequence[Deployment]:
        """Newest first."""
        ...

    def latest_deployments(self, agent_name: str | None) -> Sequence[Deployment]:
        """The newest report of each (agent, certificate name)."""
        ...

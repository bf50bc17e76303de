"""What an operator does with host agents: one-time join tokens, the list of agents,
revoking one (its identity certificates with it), and the deployments they reported."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from certfleet.access import NamePattern, hash_secret
from certfleet.agents import (
    Agent,
    Deployment,
    JoinToken,
    check_agent_name,
)
from certfleet.audit import AuditLog
from certfleet.clock import Clock, iso
from certfleet.errors import CertfleetError, Conflict, InvalidInput, NotFound, Unauthenticated
from certfleet.services._ports import (
    AgentUnitOfWorkFactory,
    CertificateRevoker,
)

__all__ = ["MAX_TOKEN_TTL", "AgentAdmin", "MintedJoinToken", "split_join_token"]

_TOKEN_PREFIX = "cfj"  # noqa: S105 - a prefix, not a secret
MAX_TOKEN_TTL = dt.timedelta(days=7)


@dataclass(frozen=True)
class MintedJoinToken:
    token: str  # shown once; only the SHA-256 of its secret is stored
    record: JoinToken

    def to_dict(self) -> dict[str, Any]:
        """What ``agent token create --format json`` and ``POST /api/v1/agents/join-tokens``
        show (they add the root's fingerprint the host pins)."""
        return {
            "token": self.token,
            "id": self.record.id,
            "host": self.record.host,
            "team": self.record.team,
            "allow_names": [p.text for p in self.record.allow_names],
            "expires_at": iso(self.record.expires_at),
        }


def split_join_token(token: str) -> tuple[str, str]:
    prefix, _, rest = token.strip().partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != _TOKEN_PREFIX or not token_id or not secret:
        raise Unauthenticated("malformed join token: expected cfj_<id>_<secret>")
    return token_id, secret


class AgentAdmin:
    def __init__(
        self, uow: AgentUnitOfWorkFactory, clock: Clock, revoke_certificate: CertificateRevoker | None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._revoke_certificate = revoke_certificate

    def create_join_token(
        self,
        host: str,
        *,
        team: str | None,
        ttl: dt.timedelta,
        allow_names: Sequence[str] = (),
        actor: str,
    ) -> MintedJoinToken:
        """A one-time token for ``host``. The agent may later be issued only names matching
        ``allow_names`` (default: the host name itself)."""
        name = check_agent_name(host)
        if not dt.timedelta(seconds=1) <= ttl <= MAX_TOKEN_TTL:
            raise InvalidInput("a join token's TTL must be between 1 second and 7 days")
        team = team.strip() if team else None
        patterns = tuple(NamePattern.parse(p) for p in allow_names) or (NamePattern.parse(name),)
        now = self._clock.now()
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = JoinToken(token_id, name, team, patterns, hash_secret(secret), actor, now, now + ttl)
        with self._uow() as uow:
            uow.agents.add_join_token(record)
            AuditLog(uow.audit, self._clock).record(
                actor,
                "agent.token.created",
                token_id,
                {
                    "host": name,
                    "team": team,
                    "allow_names": [p.text for p in patterns],
                    "expires_at": record.expires_at.isoformat(),
                },
            )
        return MintedJoinToken(f"{_TOKEN_PREFIX}_{token_id}_{secret}", record)

    def list_agents(self) -> Sequence[Agent]:
        with self._uow() as uow:
            return list(uow.agents.list_agents())

    def revoke(self, name: str, *, actor: str, reason: str = "privilegeWithdrawn") -> Agent:
        """Refuse the agent from now on, and revoke its identity certificates so they also
        fail CRL and OCSP checks elsewhere."""
        now = self._clock.now()
        with self._uow() as uow:
            if not uow.agents.revoke_agent(name, now):
                if uow.agents.get_agent(name) is None:
                    raise NotFound(f"no agent {name!r}")
                raise Conflict(f"agent {name!r} is already revoked")
            identities = uow.agents.identities_of(name)
            AuditLog(uow.audit, self._clock).record(actor, "agent.revoked", name, {"reason": reason})
            agent = uow.agents.get_agent(name)
        assert agent is not None
        if self._revoke_certificate is not None:
            for identity in identities:
                if identity.not_after > now:
                    try:
                        self._revoke_certificate(identity.serial, actor)
                    except CertfleetError:
                        continue  # already revoked: the agent is refused by its status anyway
        return agent

    def deployments(self, agent_name: str | None = None, *, latest: bool = True) -> Sequence[Deployment]:
        with self._uow() as uow:
            if latest:
                return list(uow.agents.latest_deployments(agent_name))
            return list(uow.agents.deployments(agent_name, 1000))

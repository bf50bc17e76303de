"""The agent repository: join tokens, agents, identities, managed certificates, deployments."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from certfleet.access import NamePattern
from certfleet.agents import (
    Agent,
    AgentIdentity,
    AgentStatus,
    Deployment,
    DeploymentStatus,
    JoinToken,
    ManagedCertificate,
)
from certfleet.store._agent_models import (
    AgentDeploymentRow,
    AgentIdentityRow,
    AgentJoinTokenRow,
    AgentManagedRow,
    AgentRow,
)

__all__ = ["SqlAgentRepository"]


def _patterns(text: str) -> tuple[NamePattern, ...]:
    return tuple(NamePattern(p) for p in json.loads(text))


def _patterns_json(patterns: Sequence[NamePattern]) -> str:
    return json.dumps([p.text for p in patterns])


def _token(row: AgentJoinTokenRow) -> JoinToken:
    return JoinToken(
        id=row.id,
        host=row.host,
        team=row.team,
        allow_names=_patterns(row.allow_names_json),
        secret_hash=row.secret_hash,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )


def _agent(row: AgentRow) -> Agent:
    return Agent(
        name=row.name,
        team=row.team,
        allow_names=_patterns(row.allow_names_json),
        status=AgentStatus(row.status),
        enrolled_at=row.enrolled_at,
        revoked_at=row.revoked_at,
        last_seen=row.last_seen,
    )


def _identity(row: AgentIdentityRow) -> AgentIdentity:
    return AgentIdentity(row.fingerprint_sha256, row.agent_name, row.serial, row.issued_at, row.not_after)


def _managed(row: AgentManagedRow) -> ManagedCertificate:
    return ManagedCertificate(
        agent_name=row.agent_name,
        name=row.name,
        profile=row.profile,
        names=tuple(json.loads(row.names_json)),
        spki_sha256=row.spki_sha256,
        fingerprint_sha256=row.fingerprint_sha256,
        issued_at=row.issued_at,
    )


def _deployment(row: AgentDeploymentRow) -> Deployment:
    return Deployment(
        agent_name=row.agent_name,
        name=row.name,
        certificate_id=row.certificate_id,
        fingerprint_sha256=row.fingerprint_sha256,
        serial=row.serial,
        status=DeploymentStatus(row.status),
        files=json.loads(row.files_json),
        endpoint=row.endpoint,
        sni=row.sni,
        issuer=row.issuer,
        detail=row.detail,
        reported_at=row.reported_at,
        id=row.id,
    )


class SqlAgentRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    # -- join tokens ----------------------------------------------------------------------

    def add_join_token(self, token: JoinToken) -> None:
        self._session.add(
            AgentJoinTokenRow(
                id=token.id,
                host=token.host,
                team=token.team,
                allow_names_json=_patterns_json(token.allow_names),
                secret_hash=token.secret_hash,
                created_by=token.created_by,
                created_at=token.created_at,
                expires_at=token.expires_at,
                used_at=token.used_at,
            )
        )
        self._session.flush()

    def get_join_token(self, token_id: str) -> JoinToken | None:
        row = self._session.get(AgentJoinTokenRow, token_id)
        return _token(row) if row is not None else None

    def consume_join_token(self, token_id: str, at: dt.datetime) -> bool:
        # The WHERE clause is the single-use guarantee: of two transactions racing with one
        # token, the database lets exactly one UPDATE match the unused row.
        result = self._session.execute(
            update(AgentJoinTokenRow)
            .where(
                AgentJoinTokenRow.id == token_id,
                AgentJoinTokenRow.used_at.is_(None),
                AgentJoinTokenRow.expires_at > at,
            )
            .values(used_at=at)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    # -- agents ---------------------------------------------------------------------------

    def put_agent(self, agent: Agent) -> None:
        row = self._session.get(AgentRow, agent.name)
        if row is None:
            row = AgentRow(name=agent.name)
            self._session.add(row)
        row.team = agent.team
        row.allow_names_json = _patterns_json(agent.allow_names)
        row.status = agent.status.value
        row.enrolled_at = agent.enrolled_at
        row.revoked_at = agent.revoked_at
        row.last_seen = agent.last_seen
        self._session.flush()

    def get_agent(self, name: str) -> Agent | None:
        row = self._session.get(AgentRow, name)
        return _agent(row) if row is not None else None

    def list_agents(self) -> Sequence[Agent]:
        return [_agent(r) for r in self._session.scalars(select(AgentRow).order_by(AgentRow.name))]

    def revoke_agent(self, name: str, at: dt.datetime) -> bool:
        result = self._session.execute(
            update(AgentRow)
            .where(AgentRow.name == name, AgentRow.status == AgentStatus.ACTIVE.value)
            .values(status=AgentStatus.REVOKED.value, revoked_at=at)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    def touch_agent(self, name: str, at: dt.datetime) -> None:
        self._session.execute(
            update(AgentRow)
            .where(AgentRow.name == name)
            .values(last_seen=at)
            .execution_options(synchronize_session=False)
        )

    # -- identities -----------------------------------------------------------------------

    def add_identity(self, identity: AgentIdentity) -> None:
        self._session.add(
            AgentIdentityRow(
                fingerprint_sha256=identity.fingerprint_sha256,
                agent_name=identity.agent_name,
                serial=identity.serial,
                issued_at=identity.issued_at,
                not_after=identity.not_after,
            )
        )
        self._session.flush()

    def get_identity(self, fingerprint_sha256: str) -> AgentIdentity | None:
        row = self._session.get(AgentIdentityRow, fingerprint_sha256)
        return _identity(row) if row is not None else None

    def identities_of(self, agent_name: str) -> Sequence[AgentIdentity]:
        stmt = (
            select(AgentIdentityRow)
            .where(AgentIdentityRow.agent_name == agent_name)
            .order_by(AgentIdentityRow.issued_at)
        )
        return [_identity(r) for r in self._session.scalars(stmt)]

    # -- managed certificates -------------------------------------------------------------

    def get_managed(self, agent_name: str, name: str) -> ManagedCertificate | None:
        row = self._session.get(AgentManagedRow, (agent_name, name))
        return _managed(row) if row is not None else None

    def put_managed(self, managed: ManagedCertificate) -> None:
        row = self._session.get(AgentManagedRow, (managed.agent_name, managed.name))
        if row is None:
            row = AgentManagedRow(agent_name=managed.agent_name, name=managed.name)
            self._session.add(row)
        row.profile = managed.profile
        row.names_json = json.dumps(list(managed.names))
        row.spki_sha256 = managed.spki_sha256
        row.fingerprint_sha256 = managed.fingerprint_sha256
        row.issued_at = managed.issued_at
        self._session.flush()

    def managed_of(self, agent_name: str) -> Sequence[ManagedCertificate]:
        stmt = (
            select(AgentManagedRow)
            .where(AgentManagedRow.agent_name == agent_name)
            .order_by(AgentManagedRow.name)
        )
        return [_managed(r) for r in self._session.scalars(stmt)]

    # -- deployments ----------------------------------------------------------------------

    def add_deployment(self, deployment: Deployment) -> Deployment:
        row = AgentDeploymentRow(
            agent_name=deployment.agent_name,
            name=deployment.name,
            certificate_id=deployment.certificate_id,
            fingerprint_sha256=deployment.fingerprint_sha256,
            serial=deployment.serial,
            status=deployment.status.value,
            files_json=json.dumps(dict(deployment.files), sort_keys=True),
            endpoint=deployment.endpoint,
            sni=deployment.sni,
            issuer=deployment.issuer,
            detail=deployment.detail,
            reported_at=deployment.reported_at,
        )
        self._session.add(row)
        self._session.flush()
        return _deployment(row)

    def deployments(self, agent_name: str | None, limit: int) -> Sequence[Deployment]:
        stmt = select(AgentDeploymentRow).order_by(AgentDeploymentRow.id.desc()).limit(limit)
        if agent_name is not None:
            stmt = stmt.where(AgentDeploymentRow.agent_name == agent_name)
        return [_deployment(r) for r in self._session.scalars(stmt)]

    def latest_deployments(self, agent_name: str | None) -> Sequence[Deployment]:
        newest = select(func.max(AgentDeploymentRow.id)).group_by(
            AgentDeploymentRow.agent_name, AgentDeploymentRow.name
        )
        if agent_name is not None:
            newest = newest.where(AgentDeploymentRow.agent_name == agent_name)
        stmt = (
            select(AgentDeploymentRow)
            .where(AgentDeploymentRow.id.in_(newest))
            .order_by(AgentDeploymentRow.agent_name, AgentDeploymentRow.name)
        )
        return [_deployment(r) for r in self._session.scalars(stmt)]

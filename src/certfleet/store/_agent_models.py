"""Tables of the host agent: one-time join tokens, enrolled agents and their mTLS identities,
the certificates each agent manages, and every deployment an agent reported."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store.models import Base, UtcDateTime

__all__ = [
    "AgentDeploymentRow",
    "AgentIdentityRow",
    "AgentJoinTokenRow",
    "AgentManagedRow",
    "AgentRow",
]

_ID = BigInteger().with_variant(Integer, "sqlite")


class AgentJoinTokenRow(Base):
    """Only SHA-256 of the secret is kept. ``used_at`` is set by one conditional UPDATE, so
    two enrolments racing with one token cannot both win."""

    __tablename__ = "agent_join_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(253), index=True)
    team: Mapped[str | None] = mapped_column(String(100))
    allow_names_json: Mapped[str] = mapped_column(Text)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class AgentRow(Base):
    __tablename__ = "agents"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    team: Mapped[str | None] = mapped_column(String(100), index=True)
    allow_names_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # active | revoked
    enrolled_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_seen: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class AgentIdentityRow(Base):
    """Each client certificate an agent was given; authentication looks the peer up here."""

    __tablename__ = "agent_identities"

    fingerprint_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_name: Mapped[str] = mapped_column(ForeignKey("agents.name", ondelete="CASCADE"), index=True)
    serial: Mapped[str] = mapped_column(String(42))
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    not_after: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class AgentManagedRow(Base):
    """The last certificate the server issued to an agent for one configured name, with the
    key it certified: a retried request for the same key gets that certificate back instead
    of a second issuance."""

    __tablename__ = "agent_managed_certificates"

    agent_name: Mapped[str] = mapped_column(ForeignKey("agents.name", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile: Mapped[str] = mapped_column(String(60))
    names_json: Mapped[str] = mapped_column(Text)
    spki_sha256: Mapped[str] = mapped_column(String(64))
    fingerprint_sha256: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class AgentDeploymentRow(Base):
    __tablename__ = "agent_deployments"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    agent_name: Mapped[str] = mapped_column(ForeignKey("agents.name", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    certificate_id: Mapped[int | None] = mapped_column(
        _ID, ForeignKey("certificates.id", ondelete="SET NULL"), index=True
    )
    fingerprint_sha256: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(42))
    status: Mapped[str] = mapped_column(String(16))  # deployed | failed | rolled_back
    files_json: Mapped[str] = mapped_column(Text)
    endpoint: Mapped[str | None] = mapped_column(String(300))
    sni: Mapped[str | None] = mapped_column(String(255))
    issuer: Mapped[str] = mapped_column(String(20))  # certfleet | acme
    detail: Mapped[str] = mapped_column(Text, default="")
    reported_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_agent_deployments_agent_name_id", "agent_name", "name", "id"),)

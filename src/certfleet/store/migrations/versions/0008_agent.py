"""agent: join tokens, agents, identities, managed certificates, deployments

Revision ID: 0008_agent
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_agent"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "agent_join_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("allow_names_json", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_agent_join_tokens_host", "agent_join_tokens", ["host"])
    op.create_table(
        "agents",
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("allow_names_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_agents_team", "agents", ["team"])
    op.create_table(
        "agent_identities",
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("agent_name", sa.String(length=253), nullable=False),
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_name"], ["agents.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("fingerprint_sha256"),
    )
    op.create_index("ix_agent_identities_agent_name", "agent_identities", ["agent_name"])
    op.create_table(
        "agent_managed_certificates",
        sa.Column("agent_name", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=60), nullable=False),
        sa.Column("names_json", sa.Text(), nullable=False),
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_name"], ["agents.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("agent_name", "name"),
    )
    op.create_table(
        "agent_deployments",
        sa.Column("id", _ID, nullable=False),
        sa.Column("agent_name", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("certificate_id", _ID, nullable=True),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("files_json", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.String(length=300), nullable=True),
        sa.Column("sni", sa.String(length=255), nullable=True),
        sa.Column("issuer", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_name"], ["agents.name"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_agent_deployments_agent_name_id", "agent_deployments", ["agent_name", "name", "id"])
    op.create_index("ix_agent_deployments_certificate_id", "agent_deployments", ["certificate_id"])


def downgrade() -> None:
    op.drop_table("agent_deployments")
    op.drop_table("agent_managed_certificates")
    op.drop_table("agent_identities")
    op.drop_table("agents")
    op.drop_table("agent_join_tokens")

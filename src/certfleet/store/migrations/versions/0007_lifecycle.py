"""lifecycle: renewal jobs, certificate lineage, rotation campaigns and items

Revision ID: 0007_lifecycle
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_lifecycle"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "renewal_jobs",
        sa.Column("certificate_id", _ID, nullable=False),
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("renew_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=80), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("successor_id", _ID, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("certificate_id"),
    )
    op.create_index("ix_renewal_jobs_state_due", "renewal_jobs", ["state", "due_at"])
    op.create_index("ix_renewal_jobs_serial", "renewal_jobs", ["serial"])
    op.create_table(
        "certificate_lineage",
        sa.Column("certificate_id", _ID, nullable=False),
        sa.Column("supersedes_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["supersedes_id"], ["certificates.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("certificate_id"),
        sa.UniqueConstraint("supersedes_id"),
    )
    op.create_table(
        "rotation_campaigns",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("selection", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("to_key_type", sa.String(length=20), nullable=True),
        sa.Column("to_ca_id", sa.String(length=32), nullable=True),
        sa.Column("revoke_after_seconds", sa.BigInteger(), nullable=True),
        sa.Column("revoke_reason", sa.String(length=40), nullable=False),
        sa.Column("generate_dir", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rotation_campaigns_status", "rotation_campaigns", ["status"])
    op.create_table(
        "rotation_items",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("certificate_id", _ID, nullable=False),
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("successor_id", _ID, nullable=True),
        sa.Column("reissued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("old_revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["rotation_campaigns.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "certificate_id"),
    )
    op.create_index("ix_rotation_items_claim", "rotation_items", ["campaign_id", "state", "due_at"])
    op.create_index("ix_rotation_items_serial", "rotation_items", ["campaign_id", "serial"])


def downgrade() -> None:
    op.drop_index("ix_rotation_items_serial", table_name="rotation_items")
    op.drop_index("ix_rotation_items_claim", table_name="rotation_items")
    op.drop_table("rotation_items")
    op.drop_index("ix_rotation_campaigns_status", table_name="rotation_campaigns")
    op.drop_table("rotation_campaigns")
    op.drop_table("certificate_lineage")
    op.drop_index("ix_renewal_jobs_serial", table_name="renewal_jobs")
    op.drop_index("ix_renewal_jobs_state_due", table_name="renewal_jobs")
    op.drop_table("renewal_jobs")

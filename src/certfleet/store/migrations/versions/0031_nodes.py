"""nodes: each serving node's heartbeat (its version, when the database last heard from it,
and its clock's skew against the database's), so ``certfleet db check`` lists every node

Revision ID: 0031_nodes
Revises: 0001
Create Date: 2026-12-03

Expand only: a new table the previous version never reads.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031_nodes"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(length=200), primary_key=True),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clock_skew_seconds", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("nodes")

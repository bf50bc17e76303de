"""audit: the SIEM stream's cursor

Revision ID: 0028_siem
Revises: 0001
Create Date: 2026-12-03

One row per stream: the last audit seq delivered to the collector, so an outage or a
restart resumes after it, in order (the audit log itself is the outbox).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028_siem"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "siem_cursor",
        sa.Column("stream", sa.String(length=100), primary_key=True),
        sa.Column(
            "delivered_seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            server_default="0",
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("siem_cursor")

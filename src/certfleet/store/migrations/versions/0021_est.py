"""est: HTTP Basic credentials for EST enrolment (RFC 7030 section 3.2.3), stored hashed

Revision ID: 0021_est
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_est"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "est_credentials",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=True),
        sa.Column("allow_names_json", sa.Text(), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_est_credentials_team", "est_credentials", ["team"])


def downgrade() -> None:
    op.drop_index("ix_est_credentials_team", table_name="est_credentials")
    op.drop_table("est_credentials")

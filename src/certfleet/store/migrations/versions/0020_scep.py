"""scep: challenge passwords (hashed) and transactions (one certificate per transactionID)

Revision ID: 0020_scep
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_scep"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scep_challenges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("allow_names_json", sa.Text(), nullable=False),
        sa.Column("uses_left", sa.Integer(), nullable=False),
        sa.Column("manual_approval", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "scep_transactions",
        sa.Column("transaction_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("challenge_id", sa.String(length=32), nullable=True),
        sa.Column("renews_serial", sa.String(length=64), nullable=True),
        sa.Column("csr_der", sa.LargeBinary(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=True),
        sa.Column("chain_pem", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("transaction_id"),
    )
    op.create_index("ix_scep_transactions_status", "scep_transactions", ["status"])


def downgrade() -> None:
    op.drop_index("ix_scep_transactions_status", table_name="scep_transactions")
    op.drop_table("scep_transactions")
    op.drop_table("scep_challenges")

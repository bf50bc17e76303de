"""acme: when an order or a challenge entered ``processing``, so a node can resolve one whose
worker died (a killed process, a lost node) instead of leaving it processing for ever

Revision ID: 0024_issuance_recovery
Revises: 0014_acme_eab_single_use
Create Date: 2026-12-03

Both columns are nullable and added without a default: an online upgrade, which the old
version keeps serving through (it never reads them). A row already processing when this runs
has no time and counts as stalled.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_issuance_recovery"
down_revision = "0014_acme_eab_single_use"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("acme_orders", "acme_challenges"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("processing_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ("acme_orders", "acme_challenges"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("processing_since")

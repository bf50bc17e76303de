"""lifecycle: a campaign's deadline, and the agent holding each campaign item

Revision ID: 0016_campaign_deadline
Revises: 0007_lifecycle
Create Date: 2026-12-06

``deadline_at``: when a campaign revokes what is still not replaced (a CA compromise).
``holder``: the agent that holds an item's certificate; its old certificate is revoked only
once the agent reports the replacement deployed. ``ix_rotation_items_successor``: an agent's
first request with a new identity finds the item that identity replaces.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_campaign_deadline"
down_revision = "0007_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rotation_campaigns") as batch:
        batch.add_column(sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("rotation_items") as batch:
        batch.add_column(sa.Column("holder", sa.String(length=253), nullable=True))
    op.create_index("ix_rotation_items_successor", "rotation_items", ["successor_id"])


def downgrade() -> None:
    op.drop_index("ix_rotation_items_successor", table_name="rotation_items")
    with op.batch_alter_table("rotation_items") as batch:
        batch.drop_column("holder")
    with op.batch_alter_table("rotation_campaigns") as batch:
        batch.drop_column("deadline_at")

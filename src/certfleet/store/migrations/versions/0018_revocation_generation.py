"""revocation: the revocation generation, one counter for every change of an OCSP answer

Revision ID: 0018_revocation_generation
Revises: 0002_revocation
Create Date: 2026-12-03

A single row (id 1) whose ``value`` grows in the same transaction as every change that alters
an OCSP answer (today: each revocation, of a leaf, an intermediate CA or a responder
certificate). Every ``serve`` worker and node keeps signed answers in memory only for the
generation they were built at, and reads this row (on SQLite only after PRAGMA data_version
says another connection committed) before it answers from memory.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_revocation_generation"
down_revision = "0002_revocation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "revocation_generation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "value": 0}])


def downgrade() -> None:
    op.drop_table("revocation_generation")

"""lifecycle: the profile a rotation campaign moves its certificates to

Revision ID: 0026_crypto
Revises: 0019_renewal_plan
Create Date: 2026-12-03

``to_profile``: ``certfleet rotate --to-profile internal-mtls-pq`` (issue 17) reissues every
selected certificate under that profile, and so from the hierarchy the profile names (its
post-quantum CA). Null: each certificate keeps its own profile, as before. Expand only: a
nullable column the previous version never reads.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026_crypto"
down_revision = "0019_renewal_plan"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rotation_campaigns") as batch:
        batch.add_column(sa.Column("to_profile", sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rotation_campaigns") as batch:
        batch.drop_column("to_profile")
